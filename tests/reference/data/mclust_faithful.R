# The R side of tests/unit/test_mclust_reference.py: mclust 6.0.0 on R's faithful data set
# (the same 272 rows as bigem.datasets.load_faithful). Run from this folder:
#   Rscript mclust_faithful.R
# It writes the CSV files beside it. R is the oracle only: the tests read these files.
library(mclust)
stopifnot(packageVersion("mclust") == "6.0.0")
X <- as.matrix(faithful)
opt <- function(x) format(x, digits = 17)

# 1. mclustBIC(faithful): 14 models x K = 1..9, without and with the default prior
bic <- function(b) { b <- unclass(b)[, ]; data.frame(K = as.integer(rownames(b)), apply(b, 2, opt), check.names = FALSE) }
write.csv(bic(mclustBIC(X)), "mclust_faithful_bic.csv", row.names = FALSE, quote = FALSE)
write.csv(bic(mclustBIC(X, prior = priorControl())), "mclust_faithful_bic_prior.csv", row.names = FALSE, quote = FALSE)
# one column: the waiting times, mclust's univariate models E and V
w <- faithful$waiting
write.csv(bic(mclustBIC(w, prior = priorControl())), "mclust_waiting_bic_prior.csv", row.names = FALSE, quote = FALSE)

# 2. one MAP M-step from a fixed classification (hc's K = 3 cut, mclust's default start),
# for every model mclust fits with a prior: the parameters that me() computes in its first
# iteration (itmax = 1; me's M-step drives mclustBIC) and what mstep() returns
labels <- hclass(hc(X, modelName = "VVV", use = "SVD"), 3)[, 1]
wlabels <- hclass(hc(w, modelName = "V"), 3)[, 1]
write.csv(data.frame(label = labels, waiting_label = wlabels), "mclust_faithful_labels3.csv", row.names = FALSE)
rows <- list()
one <- function(source, model, fit) {
  p <- fit$parameters
  mu <- if (is.null(dim(p$mean))) matrix(p$mean, nrow = 1) else p$mean; sigma <- p$variance$sigma
  G <- ncol(mu); d <- nrow(mu)
  if (d == 1) sigma <- array(rep(p$variance$sigmasq, length.out = G), c(1, 1, G))  # E and V
  for (k in 1:G) {
    for (i in 1:d) rows[[length(rows) + 1]] <<- data.frame(source, model, k, what = "mean", i, j = 0, value = opt(mu[i, k]))
    for (i in 1:d) for (j in 1:d)
      rows[[length(rows) + 1]] <<- data.frame(source, model, k, what = "sigma", i, j, value = opt(sigma[i, j, k]))
  }
}
for (mn in c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")) {
  z <- unmap(labels)
  one("me", mn, me(modelName = mn, data = X, z = z, prior = priorControl(), control = emControl(itmax = 1), warn = FALSE))
  one("mstep", mn, mstep(modelName = mn, data = X, z = z, prior = priorControl(), warn = FALSE))
}
for (mn in c("E", "V")) {
  z <- unmap(wlabels)
  one("me", mn, me(modelName = mn, data = w, z = z, prior = priorControl(), control = emControl(itmax = 1), warn = FALSE))
  one("mstep", mn, mstep(modelName = mn, data = w, z = z, prior = priorControl(), warn = FALSE))
}
write.csv(do.call(rbind, rows), "mclust_faithful_mstep_prior.csv", row.names = FALSE, quote = FALSE)
