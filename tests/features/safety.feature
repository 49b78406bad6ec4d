@integration
Feature: Safety interlocks hold before anything is sent
  A read-only adapter never places or cancels. An order on a live account — not a paper "DU…"
  account, or the live ports 7496/4001 — is refused unless the config says trading_mode: live
  and allow_live: true. Account ids never appear unmasked in the adapter's logs.

  Scenario: read_only refuses place_order and cancel_order before anything is sent
    Given a simulated IB gateway for account "DU1234567"
    And a connected adapter
    And a resting AAPL bull call spread order placed earlier
    And a second adapter with client id 12 connected with IBKR_READ_ONLY=True
    When the read-only adapter places a limit order for 1 AAPL bull call spread
    Then it raises ReadOnlyViolation
    And the error is a ValueError naming "read"
    When the read-only adapter cancels an order
    Then the cancel was refused
    And the gateway received no new order
    And the gateway received no cancel from the read-only adapter

  Scenario Outline: An order on account <account> with trading_mode <mode> and allow_live <allow>: <outcome>
    Given a simulated IB gateway for account "<account>"
    And a connected adapter with TRADING_MODE="<mode>", ALLOW_LIVE=<allow>
    When I place a limit order for 1 AAPL bull call spread
    Then the order is <outcome>

    Examples:
      | account   | mode  | allow | outcome |
      | DU1234567 | paper | False | placed  |
      | U7654321  | paper | False | refused |
      | U7654321  | paper | True  | refused |
      | U7654321  | live  | False | refused |
      | U7654321  | live  | True  | placed  |

  Scenario Outline: A gateway on the live port <port> is live even for a paper account
    Given a simulated IB gateway on port <port> for account "DU1234567"
    And a connected adapter with TRADING_MODE="paper", ALLOW_LIVE=False
    When I place a limit order for 1 AAPL bull call spread
    Then the order is refused

    Examples:
      | port |
      | 4001 |
      | 7496 |

  Scenario: Account ids are masked in the logs, ib_insync's included, at INFO as the app runs
    Given the application logs at INFO
    And a simulated IB gateway for account "DU1234567"
    And a connected adapter
    And a resting AAPL bull call spread order placed earlier
    And the gateway fills it
    When I read the account summary and the positions
    Then no log record shows the account id "DU1234567" unmasked
