@integration
Feature: The adapter survives the gateway
  The real ib_insync client inside the adapter talks the TWS wire protocol to a simulated
  gateway that we kill, restart, drop, silence and make broadcast IB's connectivity codes.
  The adapter reconnects by itself, reconciles what happened while it was away, and never
  turns one order into two.

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

  Scenario: The gateway flaps while the adapter is still synchronising after a reconnect
    Given 2 resting limit orders on AAPL bull call spreads
    When the gateway is killed and restarted, then killed again as soon as the adapter logs on, 3 times
    And the gateway is restarted
    Then the adapter is connected again within 10 seconds
    And no order was lost or duplicated
    And market data for AAPL ticks again

  Scenario Outline: Error <code> on a live socket makes the adapter reconnect by itself
    Given 1 resting limit orders on AAPL bull call spreads
    When the gateway broadcasts code <code>
    Then the adapter reconnected within 5 seconds
    And no order was lost or duplicated

    Examples:
      | code |
      | 504  |
      | 502  |

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

  Scenario: With auto_reconnect off a dropped connection stays down until connect() is called
    Given a second adapter with client id 12 connected with IBKR_AUTO_RECONNECT=False
    When the gateway drops every client
    Then the second adapter reports it is not connected within 3 seconds
    And the second adapter is still not connected after 1 second
    And the adapter is connected again within 5 seconds
    When the second adapter calls connect()
    Then the second adapter is connected

  Scenario: Reconnect gives up after the configured maximum number of attempts
    Given a second adapter with client id 12 connected with IBKR_RECONNECT_MAX_ATTEMPTS=3
    When the gateway is killed
    Then the second adapter gives up reconnecting after 3 attempts
    When the gateway is restarted
    Then the adapter is connected again within 5 seconds
    And the second adapter is still not connected after 1 second
    When the second adapter calls connect()
    Then the second adapter is connected

  Scenario: 1100 connectivity lost, then 1102 restored with data kept
    Given market data streaming for AAPL
    When the gateway broadcasts code 1100
    Then the adapter reports it is not connected within 2 seconds
    When I place a limit order for 1 AAPL bull call spread
    Then it raises NotConnected
    And the gateway received no new order
    When the gateway broadcasts code 1102
    Then the adapter reports it is connected within 2 seconds
    And no market data subscription was sent again
    And market data for AAPL ticks again

  Scenario: 1101 restored with data lost re-subscribes every stream and the market data type
    Given market data streaming for AAPL and MSFT
    When the gateway broadcasts code 1100
    And the gateway broadcasts code 1101
    Then the adapter reports it is connected within 2 seconds
    And every streaming subscription was requested again, with the market data type
    And market data for AAPL ticks again

  Scenario Outline: Data farm notices are data health, not a disconnect
    When the gateway broadcasts code <code>
    Then the adapter's data health reports the farm <state>
    And the adapter stayed connected without reconnecting

    Examples:
      | code | state |
      | 2103 | down  |
      | 2105 | down  |
      | 2104 | ok    |
      | 2106 | ok    |

  Scenario: A second adapter with the same client id fails cleanly
    When a second adapter connects with the same client id
    Then its connect() returned False and logged "Failed to connect to IBKR"
    And its last error carries IB code 326
    And the adapter is still connected and answers requests

  Scenario: A reconnect that hits 326 (client id in use) waits it out
    When the gateway restarts and another client takes the adapter's client id first
    Then the adapter keeps retrying with backoff, not hammering, for 2 seconds
    When the other client disconnects
    Then the adapter is connected again within 5 seconds
    And no order was lost or duplicated

  Scenario Outline: A request the gateway never answers returns within its timeout
    Given the gateway goes silent for 4 seconds
    When I call <call> on the adapter
    Then it returned within the request timeout with the contract's shape for <call>
    And once the gateway speaks again the adapter answers requests

    Examples:
      | call                 |
      | get_market_data      |
      | get_account_summary  |
      | get_option_chain     |

  Scenario: An error answering a request ends it at once
    Given a connected adapter with IBKR_REQUEST_TIMEOUT=8.0
    When I request market data for the unknown symbol "ZZZZ"
    Then the result carries an error and came back well before the 8 second timeout
    And the adapter's last error is ContractNotFound with IB code 200
