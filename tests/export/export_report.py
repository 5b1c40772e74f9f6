"""Numbers the export tests measure, printed at the end of the run (and saved to
$OHLORA_EXPORT_REPORT when set). A module of its own so that tests and conftest share it."""

REPORT: dict[str, dict] = {}
