@integration
Feature: Bad input is refused before anything reaches the gateway
  Every public method validates its arguments and raises a ValueError naming the field.
  Nothing is sent and the adapter's state is exactly what it was before the call.

  Background:
    Given a simulated IB gateway
    And a connected adapter
    And a resting AAPL bull call spread order placed earlier

  Scenario Outline: place_order refuses <field> = <value>
    When I call place_order with <field> = <value>
    Then it raises ValueError naming "<named>"
    And the error is an InvalidOrder
    And the adapter's orders are unchanged
    And the gateway received no new order

    Examples:
      | field         | value           | named         |
      | symbol        | ""              | symbol        |
      | symbol        | "   "           | symbol        |
      | symbol        | None            | symbol        |
      | symbol        | 123             | symbol        |
      | symbol        | "AAPL;DROP"     | symbol        |
      | symbol        | "MSFT"          | option_spread |
      | direction     | "BUY"           | direction     |
      | direction     | "long"          | direction     |
      | direction     | None            | direction     |
      | contracts     | 0               | contracts     |
      | contracts     | -1              | contracts     |
      | contracts     | 1.5             | contracts     |
      | contracts     | True            | contracts     |
      | contracts     | "1"             | contracts     |
      | contracts     | 11              | contracts     |
      | contracts     | 10**9           | contracts     |
      | price_type    | "STOP"          | price_type    |
      | price_type    | "limit"         | price_type    |
      | price_type    | None            | price_type    |
      | limit_price   | None            | limit_price   |
      | limit_price   | 0               | limit_price   |
      | limit_price   | -1.25           | limit_price   |
      | limit_price   | nan             | limit_price   |
      | limit_price   | inf             | limit_price   |
      | limit_price   | -inf            | limit_price   |
      | limit_price   | "1.50"          | limit_price   |
      | limit_price   | True            | limit_price   |
      | option_spread | None            | option_spread |
      | option_spread | "BULL_CALL"     | option_spread |
      | order_ref     | ""              | order_ref     |
      | order_ref     | 42              | order_ref     |
      | order_ref     | "x" * 65        | order_ref     |
      | order_ref     | "bad ref"       | order_ref     |
      | order_ref     | "a/b;c"         | order_ref     |

  Scenario: A MARKET order refuses a non-finite limit price
    When I call place_order with price_type = "MARKET" and limit_price = nan
    Then it raises ValueError naming "limit_price"
    And the adapter's orders are unchanged
    And the gateway received no new order

  Scenario Outline: <method> refuses a bad order id without touching state
    When I call <method> with order id <value>
    Then it raises ValueError naming "order_id"
    And the adapter's orders are unchanged
    And the gateway received no cancel

    Examples:
      | method           | value |
      | get_order_status | None  |
      | get_order_status | 7     |
      | get_order_status | ""    |
      | cancel_order     | None  |
      | cancel_order     | 7     |
      | cancel_order     | ""    |

  Scenario Outline: <method> refuses a bad symbol without touching state
    When I call <method> with symbol <value>
    Then it raises ValueError naming "symbol"
    And the adapter's orders are unchanged
    And the gateway received no market data request

    Examples:
      | method           | value       |
      | get_market_data  | ""          |
      | get_market_data  | None        |
      | get_market_data  | "AAPL;DROP" |
      | get_option_chain | ""          |
      | get_option_chain | None        |
      | get_option_chain | 42          |

  Scenario: An unknown order id is not an error: the contract's empty answers
    When I ask for the status of order "999999" and cancel it
    Then the status is an empty dict and the cancel returned False
    And the adapter's orders are unchanged
    And the gateway received no cancel
