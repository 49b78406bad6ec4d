Feature: Partial and per-leg combo fills
  Real IB fills a resting combo in several parts, each reported as one BAG-level execution plus
  one per leg, with commission reports; an execution can reach the client before the order's
  first openOrder, and an execId ending ".02" corrects the ".01" before it. The adapter's order
  record follows all of it: filled, remaining, the average combo price and the commissions are
  the gateway's after every part, and a fill is settled once its commission arrived or the
  commission wait passed.

  Background:
    Given a simulated IB gateway that moves only when stepped
    And a connected adapter

  Scenario: A 5-lot combo fills in parts and the record is right after each part
    Given the gateway fills in parts of at most 2 lots
    When I place a marketable limit order for 5 AAPL bull call spreads
    Then after every part until it is filled the order record agrees with the gateway
    And the order filled in at least 3 parts
    And no order was lost or duplicated

  Scenario: An execution before the order's first openOrder still lands on the order
    Given the gateway fills in parts of at most 2 lots
    And the gateway sends a fill made at placement before the order's openOrder
    When I place a marketable limit order for 5 AAPL bull call spreads
    Then the order record has every execution and commission report of the gateway's order
    And after every part until it is filled the order record agrees with the gateway

  Scenario: A correction replaces the execution it corrects
    Given the gateway fills in parts of at most 2 lots
    And the gateway corrects the first part of every order
    When I place a marketable limit order for 5 AAPL bull call spreads
    And the gateway steps once
    Then the order record's executions are the gateway's, the corrected one replaced
    And after every part until it is filled the order record agrees with the gateway

  Scenario: A fill whose commission report is late is settled after the commission wait
    Given the gateway sends commission reports one step late
    And a connected adapter with IBKR_COMMISSION_WAIT=30.0
    When I place a marketable limit order for 2 AAPL bull call spreads
    Then the order is filled with 0 lots settled and 3 commission reports pending
    When 31 seconds pass
    Then the order has 2 lots settled, no commission pending and no commission yet
    When the gateway steps once
    Then the order record has every execution and commission report of the gateway's order

  Scenario Outline: The executor keeps a partly filled order working or cancels the rest
    Given the gateway fills in parts of at most 2 lots
    And a trade executor with partial_fill_policy <policy> and a 30 second timeout
    When the executor trades a signal for 5 AAPL contracts at a marketable limit
    And the executor follows its order
    And 31 seconds pass
    And the executor follows its order
    Then the executor's trade ends <final> with the gateway's filled quantity <filled>

    Examples:
      | policy      | final     | filled       |
      | keep        | Filled    | of all 5     |
      | cancel_rest | Cancelled | of part of 5 |
