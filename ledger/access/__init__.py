"""Who may use the ledger: users and passwords, API tokens, memberships, and the policy (``Need``,
``Principal``) that says what each role may do."""
