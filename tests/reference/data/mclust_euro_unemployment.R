# mclust 6.0.0's EuroUnemployment data set (31 countries: total, youth and long-term
# unemployment rates), as tests/reference/data/mclust_euro_unemployment.csv holds it.
library(mclust)
data(EuroUnemployment)
write.csv(EuroUnemployment, "mclust_euro_unemployment.csv", row.names = FALSE, quote = FALSE)
