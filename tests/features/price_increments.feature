@integration
Feature: Limit prices on the contract's price increment
  IB answers a limit price off the contract's minimum price variation with error 110 and does
  not accept the order; ib_insync 0.9.86 counts 110 as a warning and leaves the trade in
  PendingSubmit forever. The adapter puts a combo's limit on its $0.01 increment before sending,
  in the trader's favour (ibkr.price_increment_policy: round) or refuses it (refuse), and a 110
  from the gateway ends place_order at once with the order Inactive and the reason.

  Background:
    Given a simulated IB gateway

  Scenario: An off-increment debit limit is rounded down and the gateway accepts it
    Given a connected adapter
    When I place a LONG limit order at 0.019 for 1 AAPL bull call spread
    Then the order is accepted and the gateway holds it at limit 0.01
    And the adapter's record shows limit_price 0.01

  Scenario: An off-increment credit is rounded up (more credit) and the gateway accepts it
    Given a connected adapter
    When I place a SHORT limit order at 50.003 for 1 AAPL bull call spread
    Then the order is accepted and the gateway holds it at limit -50.01
    And the adapter's record shows limit_price 50.01

  Scenario: Policy refuse: a clear error before anything is sent
    Given a connected adapter with IBKR_PRICE_INCREMENT_POLICY="refuse"
    When I place a LONG limit order at 0.019 for 1 AAPL bull call spread
    Then it raises InvalidOrder naming all of "0.019", "0.01" and "ibkr.price_increment_policy"
    And the gateway received no new order
    And the adapter's orders are unchanged

  Scenario: A 110 from the gateway ends place_order at once, the order Inactive with the reason
    Given a connected adapter with IBKR_REQUEST_TIMEOUT=8.0
    And the gateway does not enforce price increments
    And the gateway answers the next order with error 110
    When I place a limit order for 1 AAPL bull call spread
    Then it raises OrderRejected
    And the error carries IB code 110 and came back well before the 8 second timeout
    And the rejected order stays Inactive with IB's reason
