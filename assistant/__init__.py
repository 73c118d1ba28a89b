"""A cited-answer assistant over policy documents in Chinese and English."""

__version__ = "0.1.0"
