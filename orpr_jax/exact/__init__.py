"""Exact references for the classic lost-sales model: value iteration, exact policy
evaluation on the Markov chain, the best base-stock level and :class:`OptimalPolicy`.
Imports only ``sim`` (types) of the project.
"""
