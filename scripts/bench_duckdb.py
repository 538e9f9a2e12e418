#!/usr/bin/env python3
"""Times DuckDB on reconlight's exact-reference matching, over the CSV files the nightly
benchmark writes (installments.csv, bank.csv). Prints one JSON line:
{"median_seconds", "runs", "matched", "amount", "duckdb"}."""
import json
import statistics
import sys
import time

import duckdb

SQL = r"""
SELECT count(*) AS matched, coalesce(sum(b.amount), 0) AS amount
FROM (
  SELECT amount,
         'HT-' || regexp_extract(remittance, '(?i)HT[\s\-_/]*(\d{4})[\s\-_/]*(\d{6})', 1)
           || '-' || regexp_extract(remittance, '(?i)HT[\s\-_/]*(\d{4})[\s\-_/]*(\d{6})', 2) AS contract_no,
         TRY_CAST(coalesce(nullif(regexp_extract(remittance, '第\s*(\d+)\s*期', 1), ''),
                           nullif(regexp_extract(remittance, '(?i)installment\s*(\d+)', 1), '')) AS INTEGER) AS seq
  FROM bank
  WHERE direction = 'credit' AND regexp_matches(remittance, '(?i)HT[\s\-_/]*\d{4}[\s\-_/]*\d{6}')
) b
JOIN installments i ON i.contract_no = b.contract_no AND i.seq = b.seq
WHERE abs(b.amount - i.amount) <= 1.00
"""


def main() -> None:
    data = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE installments AS SELECT * FROM read_csv('{data}/installments.csv', header=true, "
        "columns={'contract_no': 'VARCHAR', 'seq': 'INTEGER', 'amount': 'DECIMAL(18,2)', 'due_date': 'DATE'})"
    )
    con.execute(
        f"CREATE TABLE bank AS SELECT * FROM read_csv('{data}/bank.csv', header=true, "
        "columns={'bank_ref': 'VARCHAR', 'booking_date': 'DATE', 'direction': 'VARCHAR', 'amount': 'DECIMAL(18,2)', 'remittance': 'VARCHAR'})"
    )
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = con.execute(SQL).fetchone()
        times.append(time.perf_counter() - started)
    print(json.dumps({
        "median_seconds": statistics.median(times),
        "runs": times,
        "matched": result[0],
        "amount": str(result[1]),
        "duckdb": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
