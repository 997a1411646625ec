"""Comparing runs and flagging regressions: `statistics` over repetitions, `thresholds`
(defaults, options, thresholds files), `compare` (the one comparison), `load` (the runs a
command names, from the store or from results folders)."""
