"""Post-call analytics: summary, caller sentiment, PII redaction of the stored record."""

from callbridge.analytics.post_call import PostCallAnalyzer
from callbridge.analytics.sentiment import Sentiment, call_sentiment
from callbridge.analytics.summary import LlmSummarizer, Summarizer, extractive_summary

__all__ = [
    "LlmSummarizer",
    "PostCallAnalyzer",
    "Sentiment",
    "Summarizer",
    "call_sentiment",
    "extractive_summary",
]
