"""Tests of the data loader."""
