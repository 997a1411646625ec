"""Campaigns: many `kitt run`s (models x engines) from one YAML file, with state that
survives interruption (docs/campaigns.md).

    spec = load_campaign(path)          # validated, every error names FILE:LINE
    plan = make_plan(spec)              # runnable entries + skipped pairs with reasons
    code = run_campaign(spec, plan, state)
"""
