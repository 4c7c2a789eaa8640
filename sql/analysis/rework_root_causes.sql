-- analysis.rework_root_causes: does rework follow the problems Driftgate finds? Among
-- mature items (analysis.rework_items: done long enough ago to have shown rework), per
-- factor (a gate bypassed, a gap, a drift), the share of items with rework among those
-- that carried the factor, against the share among items that carried no factor at
-- all; relative risk with a 95% interval (Katz log method; with a zero cell, 0.5 is
-- added to every cell, Haldane-Anscombe). The row 'any' compares items with any factor.
-- Items not done or done too recently are left out and counted (excluded_not_done,
-- excluded_too_young). small_sample: fewer than rework.small_sample items on a side.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.rework_root_causes AS
WITH mature AS (
    SELECT * FROM analysis.rework_items WHERE mature
),
clean AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE rework_events > 0) AS reworked
    FROM mature WHERE len(factors) = 0
),
exposed AS (
    SELECT f AS factor, count(*) AS n, count(*) FILTER (WHERE rework_events > 0) AS reworked
    FROM mature, unnest(factors) AS t(f)
    GROUP BY f
    UNION ALL
    SELECT 'any', count(*), count(*) FILTER (WHERE rework_events > 0)
    FROM mature WHERE len(factors) > 0
),
cells AS (
    SELECT e.factor, e.n AS exposed_items, e.reworked AS exposed_reworked,
           c.n AS clean_items, c.reworked AS clean_reworked,
           least(e.reworked, e.n - e.reworked, c.reworked, c.n - c.reworked) = 0 AS zero_cell
    FROM exposed e CROSS JOIN clean c
),
estimated AS (
    SELECT *,
           CASE WHEN zero_cell THEN 0.5 ELSE 0 END AS k
    FROM cells
),
rr AS (
    SELECT *,
           ((exposed_reworked + k) / (exposed_items + 2 * k))
             / nullif((clean_reworked + k) / nullif(clean_items + 2 * k, 0), 0) AS relative_risk,
           sqrt(1 / nullif(exposed_reworked + k, 0) - 1 / nullif(exposed_items + 2 * k, 0)
                + 1 / nullif(clean_reworked + k, 0) - 1 / nullif(clean_items + 2 * k, 0)) AS se_log
    FROM estimated
)
SELECT
    factor,
    split_part(factor, ':', 1)                                   AS factor_kind,
    exposed_items, exposed_reworked,
    round(exposed_reworked / nullif(exposed_items, 0), 4)        AS exposed_rate,
    clean_items, clean_reworked,
    round(clean_reworked / nullif(clean_items, 0), 4)            AS clean_rate,
    round(relative_risk, 4)                                      AS relative_risk,
    round(exp(ln(relative_risk) - 1.96 * se_log), 4)             AS ci_low,
    round(exp(ln(relative_risk) + 1.96 * se_log), 4)             AS ci_high,
    zero_cell                                                    AS corrected,
    least(exposed_items, clean_items)
        < TRY_CAST(policy_text('$.rework.small_sample') AS INTEGER) AS small_sample,
    (SELECT count(*) FROM analysis.rework_items WHERE done_at IS NULL)      AS excluded_not_done,
    (SELECT count(*) FROM analysis.rework_items WHERE done_at IS NOT NULL AND NOT mature)
                                                                 AS excluded_too_young,
    as_of()                                                      AS as_of
FROM rr
ORDER BY factor = 'any' DESC, factor;
