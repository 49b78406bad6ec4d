@integration
Feature: Restarts as IB does them
  IB Gateway restarts itself every day: the socket closes with no error code (no 1100, nothing),
  the port is down for a while, and the gateway comes back with fresh sessions but the account's
  open orders and today's executions. Once a week the token reset keeps it down until someone
  logs in again. Both client libraries then clear their trades, fills and tickers; the adapter
  keeps its own order records, re-adopts them from the gateway, books what filled meanwhile,
  re-requests its streams, says it is down while it is down, and keeps its reconnect attempts
  spaced between the backoff's base and its cap.

  Scenario Outline: A daily restart with resting orders and a fill during the pause (<mode>)
    Given a simulated IB gateway
    And a connected adapter
    And 3 resting limit orders on AAPL bull call spreads
    And market data streaming for AAPL
    When the gateway restarts for the day with a pause of 1.5 seconds, connections <mode>
    Then the adapter reports it is not connected within 2 seconds
    And the adapter's connection metric is 0 and its health says reconnecting
    When the gateway fills the first order during the pause
    Then the adapter is connected again within 10 seconds
    And the adapter kept its order records through the restart
    And the first order is Filled with its commission, the others still live
    And no order was lost or duplicated
    And the adapter's positions agree with the gateway's
    And market data for AAPL ticks again
    And the client library logged no error about the market-data lines the restart ended
    And the second order can be cancelled after the restart
    And the connection metric is 1 and the reconnect counter 1

    Examples:
      | mode      |
      | refused   |
      | dropped   |

  Scenario: A token reset keeps the gateway down until released; attempts stay within the backoff
    Given a simulated IB gateway
    And a connected adapter with IBKR_RECONNECT_BASE=0.1, IBKR_RECONNECT_CAP=0.4, IBKR_TIMEOUT=5.0
    And 2 resting limit orders on AAPL bull call spreads
    When the gateway's token is reset, connections dropped
    Then the adapter reports it is not connected within 2 seconds
    And while the gateway drops 8 connection attempts the adapter says it is down
    And the gateway saw the attempts spaced at least 0.1 and at most 0.4 seconds apart
    When the gateway is released
    Then the adapter is connected again within 5 seconds
    And no order was lost or duplicated
    And the connection metric is 1 and the reconnect counter 1

  Scenario: A token reset with the port closed: the backoff's delays stay within base and cap
    Given a simulated IB gateway
    And a connected adapter with IBKR_RECONNECT_BASE=0.1, IBKR_RECONNECT_CAP=0.4
    When the gateway's token is reset, connections refused
    Then the adapter reports it is not connected within 2 seconds
    And the adapter has waited at least 8 backoff delays, each between 0.1 and 0.4 seconds
    And the adapter's connection metric is 0 and its health says reconnecting
    When the gateway is released
    Then the adapter is connected again within 5 seconds
    And the connection metric is 1 and the reconnect counter 1
