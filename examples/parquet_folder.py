"""A folder of Parquet files, streamed.

Writes a small data lake (``lake/events/``: 5 files of 20,000 rows with an ``event_id``
column), fits it chunk by chunk with memory bounded by a chunk, checks that the streamed
fit equals the in-memory one, and writes each event's label, joined by its id, to a
Parquet file, also streamed.
"""

import os

import numpy as np
import pandas as pd

from bigem import GaussianMixture

rng = np.random.default_rng(0)
centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 6.0, -2.0]])
os.makedirs("lake/events", exist_ok=True)
for part in range(5):
    labels = rng.integers(0, 3, 20_000)
    rows = centres[labels] + rng.normal(size=(20_000, 3))
    frame = pd.DataFrame(rows, columns=["x", "y", "z"])
    frame.insert(0, "event_id", np.arange(part * 20_000, (part + 1) * 20_000))
    frame.to_parquet(f"lake/events/part-{part}.parquet")

kw = dict(n_components=3, random_state=0, dtype="float64")
streamed = GaussianMixture(**kw, chunk_size=8_192, cache_budget=0).fit("lake/events/", columns=["x", "y", "z"])
everything = pd.concat(pd.read_parquet(f"lake/events/part-{p}.parquet") for p in range(5))
in_memory = GaussianMixture(**kw).fit(everything[["x", "y", "z"]].to_numpy())

print(f"{'':>10} {'streamed':>12} {'in memory':>12}")
print(f"{'iterations':>10} {streamed.n_iter_:>12} {in_memory.n_iter_:>12}")
print(f"{'log-lik':>10} {streamed.lower_bound_:>12.8f} {in_memory.lower_bound_:>12.8f}")
print(f"largest difference of the means: {np.abs(streamed.means_ - in_memory.means_).max():.1e}")
print("features:", list(streamed.feature_names_in_))

out = streamed.predict("lake/events/", out="labels.parquet", id_column="event_id")
labels = pd.read_parquet(out)
print(f"\nwrote {out}: {len(labels):,} rows, columns {list(labels.columns)}")
print(labels.head().to_string(index=False))
