Feature: Drop-in broker behaviour
  The host application talks to any broker through the same contract. These scenarios run
  unchanged against every backend: the placeholder (IBKRApi) and the real adapter
  (IBKRIBInsyncApi) connected to the simulated IB gateway.

  Background:
    Given a connected broker

  Scenario: Connection and account
    Then the broker is connected with an account id
    And the account summary has every contract key

  Scenario: Market data and the option chain
    When I request market data for "AAPL"
    Then the quote has a bid, an ask and a last price
    When I request the option chain for "AAPL"
    Then the chain has calls and puts with quotes and greeks

  Scenario: A LIMIT spread far from the market is tracked and cancelled
    Given a BULL_CALL spread from the live chain for "AAPL"
    When I place a LIMIT order for 1 contract at 0.05
    Then the order status is tracked as working
    When I cancel the order
    Then the order ends "Cancelled"
    And cancelling it again is refused

  Scenario: A MARKET bear put is filled and shows in the positions
    Given a BEAR_PUT spread from the live chain for "AAPL"
    When I place a MARKET order for 2 contracts
    Then the order ends "Filled"
    And the fill is for 2 contracts at a positive price with executions and commissions
    And the positions hold +2 of the long leg and -2 of the short leg

  Scenario: Placing the same order reference twice sends one order
    Given a BULL_CALL spread from the live chain for "AAPL"
    When I place a LIMIT order for 1 contract at 0.05 with reference "sig-dropin-1"
    And I place a LIMIT order for 1 contract at 0.05 with reference "sig-dropin-1"
    Then both placements return the same order id
    And the broker tracks exactly one order

  Scenario: Requests the broker cannot serve answer with the contract's shapes
    When I request market data for "INVALID"
    Then the quote is an error for "INVALID"
    And the option chain for "INVALID" is empty
    And an unknown order id has an empty status and cannot be cancelled
    And placing an order for 0 contracts raises a ValueError naming "contracts"

  Scenario: An order the broker refuses raises RuntimeError and is logged
    Given a BULL_CALL spread from the live chain for "AAPL"
    And the market is closed
    Then placing a MARKET order raises "Order placement failed"
    And "Error placing order" is logged

  Scenario: A disconnected broker refuses politely
    When I disconnect
    Then the broker is not connected
    And placing an order raises a ValueError naming "connected"
    And market data and the account summary answer with errors

  Scenario: A read-only broker refuses orders and cancels with a ValueError
    Given a BULL_CALL spread from the live chain for "AAPL"
    When I place a LIMIT order for 1 contract at 0.05
    And the broker is made read-only
    Then placing an order raises a ReadOnlyViolation naming "ibkr.read_only"
    And cancelling the order raises a ReadOnlyViolation naming "ibkr.read_only"
    And the order status is tracked as working

  Scenario: A bad symbol is a ValueError, an unknown one an error answer
    Then requesting market data for "" raises a ValueError naming "symbol"
    And requesting the option chain for "  " raises a ValueError naming "symbol"
    When I request market data for "INVALID"
    Then the quote is an error for "INVALID"

  Scenario: A host's own spread object is checked field by field before sending
    Given a BULL_CALL spread from the live chain for "AAPL"
    Then placing it with spread type "IRON_CONDOR" raises a ValueError naming "option_spread.spread_type"
    And placing it with a long leg strike of -5 raises a ValueError naming "option_spread.long_leg.strike"
    And placing it as a host-made object at 0.05 is tracked as working
