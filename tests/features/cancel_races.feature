@integration
Feature: A cancel IB refuses is not a cancel
  IB refuses a cancel it cannot honour: 10148 for an order that filled ("cannot be cancelled,
  state: Filled."), 161 for an order in a state that cannot be cancelled, 10147 for an order id
  it does not know. ib_insync 0.9.86 and ib_async 2.1.0 then mark the trade Cancelled and emit
  cancelledEvent, for an order that filled or is still working; 10349 (TIF set to DAY by a
  preset) on a live order does the same. The adapter's cancel_order returns False, its record
  follows IB's next report, and informational codes never change an order's status.

  Background:
    Given a simulated IB gateway
    And a connected adapter
    And a resting AAPL bull call spread order placed earlier

  Scenario: Cancel of an order whose fill is still on the wire: 10148, and the fill stands
    Given the gateway holds its order reports back
    And the gateway fills the resting order
    When I cancel the resting order
    Then cancel_order returned False
    And the adapter's last error carries IB code 10148
    And the resting order is Filled in the adapter with its fill

  Scenario: A cancel that races the fill: the fill wins, 10148 after the executions
    Given the gateway lets the fill win every cancel race
    When I cancel the resting order
    Then cancel_order returned False
    And the adapter's last error carries IB code 10148
    And the resting order is Filled in the adapter with its fill

  Scenario: Cancel after the gateway cancelled it: 161, and the status is IB's Cancelled
    Given the gateway holds its order reports back
    And the gateway cancels the resting order itself
    When I cancel the resting order
    Then cancel_order returned False
    And the adapter's last error carries IB code 161
    And the resting order is Cancelled in the adapter and at the gateway

  Scenario: Cancel of an order id the gateway does not know: 10147, nothing changes
    Given the gateway has lost track of the resting order
    When I cancel the resting order
    Then cancel_order returned False
    And the adapter's last error carries IB code 10147
    And the resting order is still Submitted in the adapter

  Scenario Outline: Informational code <code> on a live order leaves it Submitted
    When the gateway sends code <code> on the resting order
    Then the resting order is still Submitted in the adapter
    And the resting order can still be cancelled

    Examples:
      | code  |
      | 399   |
      | 404   |
      | 2109  |
      | 10349 |

  Scenario Outline: Informational code <code> right after placement is not a rejection
    Given the gateway sends code <code> on every order it accepts
    When I place a limit order for 1 AAPL bull call spread
    Then it returned an order id that is Submitted in the adapter and at the gateway

    Examples:
      | code  |
      | 399   |
      | 10349 |

  Scenario: Cancels from several threads at once, half of them racing fills already on the wire
    Given 5 resting limit orders on AAPL bull call spreads
    And the gateway holds its order reports back
    And the gateway fills every other resting order
    When I cancel every resting order, each from its own thread, at once
    Then each filled order's cancel returned False and it is Filled with its fill
    And each other order's cancel returned True and it is Cancelled
    And no order was lost or duplicated
