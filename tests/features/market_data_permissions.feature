@integration
Feature: Market-data permissions and delayed data
  Most paper accounts have no market-data subscriptions. IB refuses a market-data request with
  354 / 10089 / 10090 / 10168, or 10197 while a competing live session holds the data; a refused
  snapshot ends empty and a refused streaming line stays registered and silent. After
  reqMarketDataType(3) IB serves delayed ticks (66-76, 80-83) where live data is not permitted.
  The adapter says whether a quote is live or delayed, and a symbol without data is a clear error
  at once, naming IB's code and the setting to change (ibkr.market_data_type).

  Background:
    Given a simulated IB gateway whose market stands still

  Scenario: A symbol with a live permission gives a live quote
    Given a connected adapter with IBKR_MARKET_DATA_TYPE=3
    When I request market data for MSFT
    Then the quote is marked "live"
    And its prices are the gateway's current quote of MSFT

  Scenario: A delayed-only symbol with delayed data allowed gives a delayed quote
    Given the gateway permits only delayed data for MSFT
    And a connected adapter with IBKR_MARKET_DATA_TYPE=3
    When I request market data for MSFT
    Then the quote is marked "delayed"
    And its prices are the gateway's current quote of MSFT

  Scenario Outline: A delayed-only symbol under a live-only setting is an error at once
    Given the gateway permits only delayed data for MSFT, refusing live requests with <code>
    And a connected adapter with IBKR_MARKET_DATA_TYPE=1, IBKR_REQUEST_TIMEOUT=8
    When I request market data for MSFT
    Then it fails within 2 seconds naming "<code>" and "ibkr.market_data_type"
    And the error says delayed data is available
    And the gateway holds no market data line for the adapter

    Examples:
      | code  |
      | 10089 |
      | 354   |
      | 10090 |

  Scenario Outline: A symbol without any permission is an error at once (market data type <type>)
    Given the gateway permits no market data for MSFT
    And a connected adapter with IBKR_MARKET_DATA_TYPE=<type>, IBKR_REQUEST_TIMEOUT=8
    When I request market data for MSFT
    Then it fails within 2 seconds naming "<code>" and "ibkr.market_data_type"
    And the gateway holds no market data line for the adapter

    Examples:
      | type | code  |
      | 1    | 354   |
      | 3    | 10168 |

  Scenario Outline: An option chain whose options are not permitted is an error at once (<how>)
    Given the gateway permits live data for AAPL but none for its options
    And a connected adapter with IBKR_MARKET_DATA_TYPE=3, IBKR_REQUEST_TIMEOUT=8, CHAIN_STREAM_LINES=<lines>
    When I request the option chain for AAPL
    Then it fails within 3 seconds naming "10168" and "ibkr.market_data_type"
    And the gateway holds no option line for the adapter

    Examples:
      | how                 | lines |
      | snapshots           | 0     |
      | streaming lines     | 50    |

  Scenario: An option chain on a delayed-only underlying gives delayed options with greeks
    Given the gateway permits only delayed data for AAPL
    And a connected adapter with IBKR_MARKET_DATA_TYPE=3
    When I request the option chain for AAPL
    Then every option is marked "delayed" and has model greeks
    And the options' prices are the gateway's current quotes

  Scenario: An option chain on a delayed-only underlying under a live-only setting is an error at once
    Given the gateway permits only delayed data for AAPL
    And a connected adapter with IBKR_MARKET_DATA_TYPE=1, IBKR_REQUEST_TIMEOUT=8
    When I request the option chain for AAPL
    Then it fails within 2 seconds naming "10089" and "ibkr.market_data_type"
    And the gateway holds no market data line for the adapter

  Scenario: A competing live session refuses every request at once and drops open streams
    Given a connected adapter with IBKR_MARKET_DATA_TYPE=3, IBKR_REQUEST_TIMEOUT=8
    And market data streaming for AAPL
    When the gateway starts a competing live session
    Then the gateway soon holds no market data line for the adapter
    When I request market data for AAPL
    Then it fails within 2 seconds naming "10197" and "live session"
    And the error is a CompetingLiveSession
    When the competing live session ends
    And I request market data for AAPL
    Then the quote is marked "live"
