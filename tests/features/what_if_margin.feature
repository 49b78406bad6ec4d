@integration
Feature: What-if margin before an order is sent
  IB previews an order sent with whatIf: the margin it would take (initial, maintenance, equity
  with loan: before, change, after) and its commission, and places nothing. The adapter's
  what_if_order returns those figures; the risk manager asks for them once the executor has
  chosen the spread and refuses an order whose initial-margin change exceeds the account's
  available funds, before anything is placed (risk.check_margin: auto | true | false).

  Scenario: The what-if figures are the gateway's, and nothing is placed
    Given a simulated IB gateway with a still market
    And a connected adapter
    When I ask the adapter for the what-if of 2 AAPL bull call spreads at 1.50
    Then its margin and commission figures equal the gateway's for that order
    And the gateway holds no order

  Scenario: An order above the available funds is refused by the risk manager before anything is placed
    Given a simulated IB gateway whose account has 3000 in cash
    And a connected adapter
    And a risk manager and executor with RISK_CHECK_MARGIN="true"
    When the executor handles a signal for 1 AAPL LONG spread at 0.01
    Then the trade failed, the reason naming the initial margin change and the available funds
    And the gateway received a what-if order and no order without whatIf
    And the gateway holds no order

  Scenario: An order below the available funds passes the check and is placed
    Given a simulated IB gateway
    And a connected adapter
    And a risk manager and executor with RISK_CHECK_MARGIN="true"
    When the executor handles a signal for 1 AAPL LONG spread at 0.01
    Then the trade is placed and the gateway holds its order
    And the gateway received a what-if order before the order

  Scenario Outline: With the check off (<setting>, paper account) the margin is not asked for
    Given a simulated IB gateway whose account has 3000 in cash
    And a connected adapter
    And a risk manager and executor with RISK_CHECK_MARGIN=<setting>
    When the executor handles a signal for 1 AAPL LONG spread at 0.01
    Then the trade is placed and the gateway holds its order
    And the gateway received no what-if order

    Examples:
      | setting |
      | "false" |
      | "auto"  |
