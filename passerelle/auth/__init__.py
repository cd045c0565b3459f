"""Who may call what: API users, their keys and their rights on instances."""
