"""Readers for labelled datasets users may own (DEAM, EMOPIA); see each module."""
