"""Transparent policies: rule objects, the rule-file parser and the cost-aware learner."""
