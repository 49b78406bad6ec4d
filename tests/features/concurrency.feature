@integration
Feature: The lock discipline holds under load
  The host application calls the adapter from many threads while ib_insync's event handlers
  update the same orders from the loop thread. No call deadlocks, no reader sees a torn order,
  and when the dust settles the adapter agrees with the gateway.

  Background:
    Given a simulated IB gateway
    And a connected adapter with IBKR_REQUEST_TIMEOUT=10.0
    And 3 resting limit orders on AAPL bull call spreads

  Scenario: An event handler fires while a caller holds the adapter's lock
    When a caller holds the adapter's lock while the gateway fills a resting order
    Then the caller released the lock and nothing deadlocked
    And the fill shows in the order's status once the lock is free
    And a cancel sent while fills arrive returns without deadlock

  Scenario: Several threads cancel the same order at once
    When 4 threads cancel the same resting order at once
    Then every cancel returned within 2 seconds
    And at least one cancel returned True
    And the order is Cancelled at the gateway and in the adapter
    And the gateway received at most one cancel for it

  Scenario: Several threads place the same order_ref at once: one order, and every caller learns its id
    When 4 threads place the same order with order_ref "same-ref" at once
    Then the gateway holds exactly one order with order_ref "same-ref"
    And no caller was told the order failed
    And every caller ends up with the same order id, retrying a retryable error once

  Scenario: Threads mix every public call while the gateway streams and fills (quick)
    When $SOAK_THREADS (default 16) threads mix every public call for $SOAK_SECONDS (default 5) seconds while the gateway fills orders
    Then no call raised an unexpected exception and none deadlocked
    And no reader saw a torn order
    And the adapter's orders agree with the gateway's
    And the adapter's positions agree with the gateway's
    And the gateway saw no pacing violation

  Scenario: Threads mix every public call while the gateway is killed and restarted (quick)
    When $SOAK_THREADS (default 16) threads mix every public call for $SOAK_SECONDS (default 5) seconds while the gateway fills orders and restarts every 1.5 seconds
    Then no call raised an unexpected exception and none deadlocked
    And no reader saw a torn order
    And the adapter's orders agree with the gateway's
    And the adapter's positions agree with the gateway's
    And the gateway saw no pacing violation

  @soak
  Scenario: Threads mix every public call for 30 seconds while the gateway is killed and restarted
    When $SOAK_THREADS (default 16) threads mix every public call for $RESILIENCE_SOAK_SECONDS (default 30) seconds while the gateway fills orders in parts, races every other cancel against its fill, and restarts every 3 seconds
    Then no call raised an unexpected exception and none deadlocked
    And some cancels lost the race to their fill
    And no reader saw a torn order
    And the adapter's orders agree with the gateway's
    And the adapter's positions agree with the gateway's
    And the gateway saw no pacing violation

  @soak
  Scenario: Threads mix every public call for 30 seconds while the gateway streams and fills
    When $SOAK_THREADS (default 16) threads mix every public call for $RESILIENCE_SOAK_SECONDS (default 30) seconds while the gateway fills orders in parts, races every other cancel against its fill
    Then no call raised an unexpected exception and none deadlocked
    And some cancels lost the race to their fill
    And no reader saw a torn order
    And the adapter's orders agree with the gateway's
    And the adapter's positions agree with the gateway's
    And the gateway saw no pacing violation

  @soak
  Scenario: Threads mix every public call for 30 seconds while the gateway does two daily restarts
    When $SOAK_THREADS (default 16) threads mix every public call for $RESILIENCE_SOAK_SECONDS (default 30) seconds while the gateway fills orders in parts, races every other cancel against its fill, and does 2 daily restarts
    Then no call raised an unexpected exception and none deadlocked
    And some cancels lost the race to their fill
    And no reader saw a torn order
    And the adapter's orders agree with the gateway's
    And the adapter's positions agree with the gateway's
    And the gateway saw no pacing violation
    And the gateway restarted for the day 2 times
