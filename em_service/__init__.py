"""EM alert service: electronic-monitoring readings on Kafka become alerts for IOM teams."""

__version__ = "0.1.0"
