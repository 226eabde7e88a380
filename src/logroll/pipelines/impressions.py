"""Seeds 001/002: hourly impression counts per campaign, deduplicated within the event day."""

from .base import Column, Output, Pipeline

PIPELINE = Pipeline(
    name="impressions",
    description="ad-impression CSVs -> daily_agg_YYYYMMDD_{initials}.csv (CAMPAIGN_ID, HOUR, IMPRESSION_COUNT)",
    columns=(
        Column("IMPRESSION_ID", "string"),
        Column("IMPRESSION_DATETIME", "timestamp", formats=("%Y-%m-%d %H:%M:%S",)),
        Column("CAMPAIGN_ID", "integer"),
        Column("USER_ID", "string", required=False),
        Column("DEVICE_TYPE", "string", required=False),
    ),
    event_time="IMPRESSION_DATETIME",
    key=("IMPRESSION_ID", "IMPRESSION_DATETIME"),
    outputs=(
        Output(
            name="daily_agg",
            sql=(
                "SELECT CAMPAIGN_ID, CAST(hour(IMPRESSION_DATETIME) AS INTEGER) AS HOUR, "
                "count(*) AS IMPRESSION_COUNT FROM rows GROUP BY 1, 2"
            ),
            path="{date:%Y/%m/%d}/daily_agg_{date:%Y%m%d}_{initials}.csv",
            order_by=("CAMPAIGN_ID", "HOUR"),
        ),
    ),
    params={"initials": "Guy_Fawkes"},
)
