# The R side of test_a_start_class_of_one_row_is_mclusts_missing_bic (tests/unit/test_mclust_reference.py):
# mclust 6.0.0 on the 17 rows of class Overt among the odd rows of its diabetes data set, whose
# hierarchical start (K = 3 to 5) holds a class of one row. Run from this folder:
#   Rscript mclust_diabetes_overt.R
# It writes the CSV files beside it. R is the oracle only: the tests read these files.
library(mclust)
stopifnot(packageVersion("mclust") == "6.0.0")
data(diabetes)
odd <- diabetes[seq(1, nrow(diabetes), by = 2), ]
X <- as.matrix(odd[odd$class == "Overt", c("glucose", "insulin", "sspg")])
write.csv(X, "mclust_diabetes_overt_rows.csv", row.names = FALSE, quote = FALSE)
opt <- function(x) format(x, digits = 17)
b <- unclass(mclustBIC(X, G = 1:5))[, ]
write.csv(data.frame(K = as.integer(rownames(b)), apply(b, 2, function(x) trimws(opt(x))), check.names = FALSE),
          "mclust_diabetes_overt_bic.csv", row.names = FALSE, quote = FALSE)
