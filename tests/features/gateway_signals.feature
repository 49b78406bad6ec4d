@integration
Feature: What the gateway says, the adapter understands
  IB reports connectivity, data farm state and failures through numbered messages. The adapter
  tracks 1100/1101/1102 and the farm notices without tearing the connection down, reconnects on
  502/504, waits out a client id in use (326), and never waits forever for an answer.

  Background:
    Given a simulated IB gateway
    And a connected adapter

  Scenario Outline: Error <code> on a live socket makes the adapter reconnect by itself
    Given 1 resting limit orders on AAPL bull call spreads
    When the gateway broadcasts code <code>
    Then the adapter reconnected within 5 seconds
    And no order was lost or duplicated

    Examples:
      | code |
      | 504  |
      | 502  |

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

  Scenario: A new session after 1100 starts clean: connected, and IB connectivity no longer reported down
    When the gateway broadcasts code 1100
    Then the adapter reports it is not connected within 2 seconds
    When the gateway drops every client
    Then the adapter is connected again within 5 seconds
    And the adapter's data health does not report IB connectivity down

  Scenario: 1100 with no restore within the grace period: the adapter reconnects the socket itself
    Given a connected adapter with IBKR_LINK_GRACE=0.5
    And 1 resting limit orders on AAPL bull call spreads
    When the gateway broadcasts code 1100
    Then the adapter reports it is not connected within 2 seconds
    And the adapter reconnected within 5 seconds
    And the adapter's data health does not report IB connectivity down
    And no order was lost or duplicated

  Scenario: 1100 restored by 1102 within the grace period: no reconnect
    Given a connected adapter with IBKR_LINK_GRACE=1.0
    When the gateway broadcasts code 1100
    And the gateway broadcasts code 1102
    Then the adapter reports it is connected within 2 seconds
    And 1.5 seconds later the adapter has still not reconnected

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

  Scenario: An order the gateway rejects raises OrderRejected carrying IB's code, at once
    Given the market is closed at the gateway
    When I place a limit order for 1 AAPL bull call spread
    Then it raises OrderRejected
    And the error carries IB code 201 and starts with "Order placement failed: "
    And the error is a RuntimeError and not retryable
    And the order is tracked as Inactive

  Scenario: A pacing violation (error 100) drops the session; the adapter comes back by itself
    Given the gateway allows only 15 messages per second
    When I call get_option_chain on the adapter
    Then it returned at once with the contract's shape for get_option_chain
    And the gateway logged a pacing violation and the adapter logged IB error 100
    And the adapter reconnected within 5 seconds
    And the adapter is still connected and answers requests

  Scenario: An error answering a request ends it at once
    Given a connected adapter with IBKR_REQUEST_TIMEOUT=8.0
    When I request market data for the unknown symbol "ZZZZ"
    Then the result carries an error and came back well before the 8 second timeout
    And the adapter's last error is ContractNotFound with IB code 200
