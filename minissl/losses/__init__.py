"""Losses as plain functions with shape-documented arguments.

Each loss matches the equation of the paper that introduced it; the chapters show the
equation next to the code. Losses are added here by the chapters that need them.
"""
