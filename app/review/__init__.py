"""Review: the timeline replay, the audit search, the session report and the exports."""
