from src.models.option import Option, OptionSpread

__all__ = ["Option", "OptionSpread"]
