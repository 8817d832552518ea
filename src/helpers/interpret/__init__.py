"""Interpretations generated from a run's numbers: one module per stage, each returning markdown.

Every function here takes a stage's result (or its frames) and words what this run's numbers say: what is
surprising and what to do. The rules that choose a sentence are module constants, so a test can move the data
across a threshold and see the text change.
"""
