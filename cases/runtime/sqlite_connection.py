CASE = {
    "family": "runtime",
    "summary": "An sqlite3 connection (:memory:) with a table, passed to a task that queries it",
    "tags": ["sqlite3", "connection", "unpicklable"],
    "expect": "serialize-error",
}
import sqlite3

import dask

con = sqlite3.connect(":memory:", check_same_thread=False)
con.execute("create table t (x integer)")
con.executemany("insert into t values (?)", [(1,), (2,), (3,)])


def total(c):
    return c.execute("select sum(x) from t").fetchone()[0]


result = dask.delayed(total)(con)
expected = 6
