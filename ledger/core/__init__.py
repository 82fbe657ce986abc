"""The pure core: money, errors, registration numbers, the chart and its roles, entry drafts and their checks,
the account limits and the recipes. It imports the standard library and itself, nothing else, so that the
accounting rules can be read, tested and mutated without a database (beancount's ``core/`` is the model)."""
