@integration
Feature: The adapter survives the gateway
  The real ib_insync client inside the adapter talks the TWS wire protocol to a simulated
  gateway that we kill, restart, drop and flap. The adapter reconnects by itself, reconciles
  what happened while it was away (fills, cancels, positions), answers at once while it is
  down, and never turns one order into two.

  Background:
    Given a simulated IB gateway
    And a connected adapter

  Scenario: Restarts while orders rest and market data streams (quick gauntlet)
    Given 2 resting limit orders on AAPL bull call spreads
    And market data streaming for AAPL
    When the gateway is killed and restarted $RESILIENCE_RESTARTS (default 3) times, one resting order filling during each outage
    Then the adapter reconnected after every restart
    And no order was lost or duplicated
    And every fill made during an outage appears in the adapter's orders with its commission
    And the adapter's positions agree with the gateway's
    And market data for AAPL ticks again

  @soak
  Scenario: Gateway killed and restarted 10 times in a row while orders rest and data streams
    Given 2 resting limit orders on AAPL bull call spreads
    And market data streaming for AAPL
    When the gateway is killed and restarted $RESILIENCE_SOAK_RESTARTS (default 10) times, one resting order filling during each outage
    Then the adapter reconnected after every restart
    And no order was lost or duplicated
    And every fill made during an outage appears in the adapter's orders with its commission
    And the adapter's positions agree with the gateway's
    And market data for AAPL ticks again

  Scenario: Restarts with a slow gateway (150 ms each way)
    Given 2 resting limit orders on AAPL bull call spreads
    And market data streaming for AAPL
    And the gateway answers with a latency of 150 ms
    When the gateway is killed and restarted 2 times, one resting order filling during each outage
    Then no order was lost or duplicated
    And every fill made during an outage appears in the adapter's orders with its commission
    And market data for AAPL ticks again

  Scenario: While the gateway is down every public method answers at once, in the contract's shapes
    Given 1 resting limit orders on AAPL bull call spreads
    When the gateway is killed
    Then the adapter reports it is not connected within 3 seconds
    And every public method answers within 1 second in the contract's offline shape

  Scenario: What the gateway did during the outage is what the adapter shows after it
    Given 3 resting limit orders on AAPL bull call spreads
    When the gateway is killed
    And during the outage the gateway fills the first order, cancels the second and books a position of 7 MSFT
    And the gateway is restarted
    Then the adapter is connected again within 5 seconds
    And the first order is Filled, the second Cancelled and the third still live in the adapter
    And no order was lost or duplicated
    And the adapter's positions agree with the gateway's

  Scenario: disconnect() then connect() shows what the gateway did in between
    Given 3 resting limit orders on AAPL bull call spreads
    And the gateway books a position of 7 MSFT
    And market data streaming for AAPL
    When I disconnect the adapter
    And during the outage the gateway fills the first order, cancels the second and books a position of 0 MSFT
    And I connect the adapter again
    Then the first order is Filled, the second Cancelled and the third still live in the adapter
    And no order was lost or duplicated
    And the adapter's positions agree with the gateway's
    And market data for AAPL ticks again

  Scenario: Two adapters keep their own orders through a restart
    Given 2 resting limit orders on AAPL bull call spreads
    And a second adapter with client id 12 connected with IBKR_REQUEST_TIMEOUT=2.0
    And the second adapter has 2 resting orders
    When the gateway is killed
    And the gateway is restarted
    Then the adapter is connected again within 5 seconds
    And the second adapter is connected again within 5 seconds
    And each adapter tracks exactly its own orders

  Scenario: The gateway flaps while the adapter is still synchronising after a reconnect
    Given 2 resting limit orders on AAPL bull call spreads
    When the gateway is killed and restarted, then killed again as soon as the adapter logs on, 3 times
    And the gateway is restarted
    Then the adapter is connected again within 10 seconds
    And no order was lost or duplicated
    And market data for AAPL ticks again

  Scenario Outline: A <call> in flight when the connection drops ends at once
    Given the gateway answers with a latency of 1500 ms
    When I call <call> and the gateway drops every client while it waits
    Then the call ended within 1 second of the drop, in the contract's error shape
    And the adapter is connected again within 5 seconds

    Examples:
      | call                |
      | get_market_data     |
      | get_option_chain    |

  Scenario: place_order while disconnected is refused with a retryable error and sends nothing
    Given 1 resting limit orders on AAPL bull call spreads
    When the gateway is killed
    Then the adapter reports it is not connected within 3 seconds
    When I place a limit order for 1 AAPL bull call spread
    Then it raises NotConnected
    And the error is retryable
    And the adapter's orders are unchanged
    When the gateway is restarted
    Then the adapter is connected again within 5 seconds
    And the gateway received no new order
    And no order was lost or duplicated

  Scenario Outline: The connection drops in the middle of a place_order; a retry is never a second order
    Given the gateway answers with a latency of 300 ms
    When I place a limit order with order_ref "<ref>" and the connection drops <moment>
    Then the call returned an order id or raised a retryable error
    And the adapter is connected again within 5 seconds
    When the gateway answers with a latency of 0 ms
    And I retry the order with order_ref "<ref>"
    Then the retry returned the same order id as a successful first call
    And the gateway holds exactly one order with order_ref "<ref>"
    And the adapter tracks exactly one order with order_ref "<ref>"
    And no order was lost or duplicated

    Examples:
      | moment                               | ref       |
      | while the legs are being qualified   | flight-q  |
      | as soon as the gateway has the order | flight-p  |

  Scenario: An order the gateway never received is not reported live after a reconnect; its retry places it once
    Given 1 resting limit orders on AAPL bull call spreads
    And the gateway goes silent for 1 seconds
    When I place a limit order with order_ref "lost-1"
    Then the call returned an order id or raised a retryable error
    When the gateway drops every client
    Then the adapter is connected again within 5 seconds
    And the adapter does not report the order with order_ref "lost-1" as live
    When I retry the order with order_ref "lost-1"
    Then the gateway holds exactly one order with order_ref "lost-1"
    And the adapter tracks exactly one live order with order_ref "lost-1"
    And no order was lost or duplicated

  Scenario: A retry from a restarted process (a new adapter, same client id) is not a second order
    Given a resting order with order_ref "persisted-1" placed by the adapter
    When the adapter is replaced by a new one with the same client id
    And the new adapter places the same order with order_ref "persisted-1"
    Then the gateway holds exactly one order with order_ref "persisted-1"
    And the new adapter returned that order's id and reports its status

  Scenario: With auto_reconnect off a dropped connection stays down until connect() is called
    Given a second adapter with client id 12 connected with IBKR_AUTO_RECONNECT=False
    When the gateway drops every client
    Then the second adapter reports it is not connected within 3 seconds
    And the second adapter is still not connected after 1 second
    And the adapter is connected again within 5 seconds
    When the second adapter calls connect()
    Then the second adapter is connected

  Scenario Outline: <call>() while the adapter is reconnecting stops it at once
    When the gateway is killed
    Then the adapter reports it is not connected within 3 seconds
    When I call <call>() on the reconnecting adapter
    Then it returned within 2 seconds
    And after the gateway restarts the adapter does not log on again

    Examples:
      | call       |
      | disconnect |
      | close      |

  Scenario: Reconnect gives up after the configured maximum number of attempts
    Given a second adapter with client id 12 connected with IBKR_RECONNECT_MAX_ATTEMPTS=3
    When the gateway is killed
    Then the second adapter gives up reconnecting after 3 attempts
    When the gateway is restarted
    Then the adapter is connected again within 5 seconds
    And the second adapter is still not connected after 1 second
    When the second adapter calls connect()
    Then the second adapter is connected

  Scenario: An adapter started before the gateway connects by itself once the gateway is up
    When the gateway is killed
    And a second adapter with client id 12 starts and calls connect() while the gateway is down
    Then that connect() returned False at once and logged "Failed to connect to IBKR"
    And the second adapter keeps trying to connect
    When the gateway is restarted
    Then the second adapter is connected within 10 seconds
    And the second adapter places a resting order that the gateway holds
