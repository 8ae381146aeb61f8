"""Rounds: secure messaging and clinical photos for hospital care teams."""
