# Independent cptest reference (base R + jsonlite only; cvcrand itself is not installed).
#
# The cvcrand vignette's cptest example: binary outcome of Dickinson_outcome adjusted for
# location, inciis, uptodateonimmunizations, hispanic and incomecat (location and incomecat
# categorical), over the l2 constrained space with cutoff 0.1 (the 1,288 kept allocations of
# dickinson_reference.json, made independently by make_reference.py), observed allocation the
# vignette's selected scheme (counties 4, 5, 7, 9, 10, 12, 13, 15 treated).
#
# cptest's statistic: fit glm(outcome ~ covariates) ignoring arm, take residuals, average by
# cluster, difference of the arm means of the cluster means; p = share of kept allocations
# whose |statistic| is at least the observed one (relative tolerance 1e-9 for exact ties).
# Response residuals y - p_hat (cvcrand >= 0.0.4) and, for the record, working residuals
# (y - p_hat) / (p_hat (1 - p_hat)) (cvcrand < 0.0.4).  A second case leaves county 16's rows
# out (a cluster without outcome data): each allocation's arm means are over the clusters with
# data.
#
# Run from this directory: Rscript make_cptest_reference.R  -> cptest_reference.json
library(jsonlite)

out <- read.csv("cvcrand_Dickinson_outcome.csv", stringsAsFactors = FALSE)
ref <- fromJSON("dickinson_reference.json", simplifyVector = FALSE)
kept <- lapply(ref$l2$kept_treated_sets, function(s) strsplit(s, "|", fixed = TRUE)[[1]])
observed <- c("4", "5", "7", "9", "10", "12", "13", "15")
tol <- 1e-9

cptest_case <- function(d, type) {
  fit <- glm(outcome ~ factor(location) + inciis + uptodateonimmunizations + hispanic +
               factor(incomecat), family = binomial(), data = d)
  r <- if (type == "response") d$outcome - fitted(fit) else fit$residuals
  e <- tapply(r, as.character(d$county), mean)
  ids <- names(e)
  stat <- function(treated) {
    t <- ids %in% treated
    mean(e[t]) - mean(e[!t])
  }
  s <- vapply(kept, stat, numeric(1))
  s_obs <- stat(observed)
  list(
    statistic = s_obs,
    p_value = mean(abs(s) >= abs(s_obs) * (1 - tol)),
    n_ge = sum(abs(s) >= abs(s_obs) * (1 - tol)),
    n_allocations = length(s),
    clusters_with_data = length(ids)
  )
}

all_rows <- out
without16 <- out[out$county != 16, ]
res <- list(
  source = "make_cptest_reference.R (base R glm + loops; cvcrand is not installed)",
  R_version = R.version.string,
  observed_treated = observed,
  n_kept = length(kept),
  response = cptest_case(all_rows, "response"),
  working = cptest_case(all_rows, "working"),
  response_without_county_16 = cptest_case(without16, "response")
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "cptest_reference.json")
