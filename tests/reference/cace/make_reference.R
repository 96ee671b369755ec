# Reference values for trialkit.fidelity.cace (2SLS + CR2 + Satterthwaite df).
# Requires AER (ivreg), clubSandwich and jsonlite. Run from this directory:
#   Rscript make_reference.R
suppressPackageStartupMessages({library(AER); library(clubSandwich); library(jsonlite)})
d <- read.csv("data.csv", stringsAsFactors = FALSE)
one <- function(fit, term) {
  V <- vcovCR(fit, cluster = d$la_id, type = "CR2")
  ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
  k <- which(rownames(ct) == term | ct$Coef == term)
  list(estimate = unname(coef(fit)[term]), std_error = ct$SE[k], df = ct$df_Satt[k],
       p_value = ct$p_Satt[k])
}
cases <- list(
  iv_continuous = one(ivreg(y ~ d | z, data = d), "d"),
  iv_continuous_cov = one(ivreg(y ~ d + x | z + x, data = d), "d"),
  iv_binary = one(ivreg(yb ~ d | z, data = d), "d"),
  iv_two_sided_cov = one(ivreg(y ~ d2 + x | z + x, data = d), "d2"),
  itt_continuous_cov = one(lm(y ~ z + x, data = d), "z"),
  first_stage_cov = one(lm(d ~ z + x, data = d), "z")
)
cases$versions <- list(R = R.version.string, AER = as.character(packageVersion("AER")),
                       clubSandwich = as.character(packageVersion("clubSandwich")))
writeLines(toJSON(cases, digits = NA, auto_unbox = TRUE, pretty = TRUE), "reference.json")
