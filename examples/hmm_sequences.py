"""A Gaussian HMM on many sequences.

Draws 200 sequences of 100 steps from a 3-state HMM with known parameters, fits a
``GaussianHMM`` to them from three starts (the sequences stacked, with their ``lengths``;
the best log-likelihood kept), and compares
the recovered transition matrix and means with the truth; the Viterbi path recovers the
hidden states. The picture shows one sequence coloured by its decoded states.
"""

import numpy as np

from bigem import GaussianHMM
from bigem.plot._common import new_figure, save

rng = np.random.default_rng(0)
transmat = np.array([[0.90, 0.08, 0.02], [0.05, 0.90, 0.05], [0.02, 0.08, 0.90]])
means = np.array([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
n_seq, n_steps = 200, 100
states = np.empty((n_seq, n_steps), dtype=int)
for s in range(n_seq):
    states[s, 0] = rng.integers(3)
    for t in range(1, n_steps):
        states[s, t] = rng.choice(3, p=transmat[states[s, t - 1]])
X = means[states.ravel()] + rng.normal(size=(n_seq * n_steps, 2))
lengths = [n_steps] * n_seq

# EM finds a local optimum: from some starts (random_state=0 here, in hmmlearn as in
# bigem) two states merge. Try a few starts and keep the best log-likelihood.
fits = [GaussianHMM(3, covariance_type="diag", n_iter=100, random_state=seed).fit(X, lengths) for seed in range(3)]
hmm = max(fits, key=lambda h: h.score(X, lengths))
order = [int(np.argmin(np.linalg.norm(hmm.means_ - m, axis=1))) for m in means]  # fitted state of each true one
logprob, decoded = hmm.decode(X, lengths)
relabelled = np.argsort(order)[decoded]
np.set_printoptions(precision=3, suppress=True)
print(f"converged: {hmm.monitor_.converged} after {hmm.monitor_.iter} iterations; log-likelihood {logprob:.1f}")
print("true transition matrix:\n", transmat)
print("fitted transition matrix (states in the true order):\n", hmm.transmat_[np.ix_(order, order)])
print("fitted means:\n", hmm.means_[order])
accuracy = np.mean(relabelled == states.ravel())
print(f"Viterbi path: {accuracy:.1%} of the steps in their true state")
assert sorted(order) == [0, 1, 2] and accuracy > 0.9, "the fit did not recover the states"

fig, ax = new_figure()
first = slice(0, n_steps)
for k in range(3):
    at = np.flatnonzero(relabelled[first] == k)
    ax.scatter(at, X[first][at, 0], s=14, color=f"C{k}", label=f"decoded state {k}")
ax.plot(np.arange(n_steps), X[first, 0], color="grey", lw=0.6, zorder=0)
ax.set_xlabel("time step")
ax.set_ylabel("first feature")
ax.set_title("One sequence, coloured by its Viterbi states")
ax.legend()
save(fig, "hmm_states.png")
