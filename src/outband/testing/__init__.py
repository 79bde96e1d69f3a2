"""Public test kit: run engines in-process and talk to them, for outband's tests and for anyone testing an
AMT console against outband (peer pairs, frame factories and fleets join it as the protocols land)."""
