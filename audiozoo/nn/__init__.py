"""Building blocks shared by several audiozoo models."""
