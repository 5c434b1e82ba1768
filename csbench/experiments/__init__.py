"""Theory experiments: each returns a tidy pandas DataFrame and has a function drawing its Figure.

- `phase`: empirical phase transitions (success over (k, m) for a random ReLU net prior with
  the negation-check descent; over (s, m) for l1 minimisation) against the theory thresholds.
- `landscape`: where plain gradient descent ends on random ReLU nets of depth 2..5, compared
  with the spurious critical point -rho_d z*, and success of plain descent vs the negation check.

`run.py` runs them by name; `figures.py` turns their tables into the report's text and figures.
"""
