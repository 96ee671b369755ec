# Reference values for the unconditional (intercept-only) logistic GLMM behind the latent-scale
# ICC trialkit reports for binary outcomes (issue #14 item 9).
# Data: tests/reference/glmm/{caseload,boundary}.csv (see that README).
# Run from the repository root:
#   Rscript tests/reference/glmm_null/make_reference.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
src <- "tests/reference/glmm"
here <- "tests/reference/glmm_null"
num <- function(x) unname(as.numeric(x))
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13, optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                     check.conv.singular = "ignore", check.conv.grad = "ignore")
out <- list()
for (nm in c("caseload", "boundary")) {
  d <- read.csv(file.path(src, paste0(nm, ".csv")), stringsAsFactors = FALSE)
  m <- glmer(retained ~ 1 + (1 | la), data = d, family = binomial, nAGQ = 1, control = ctrl)
  s2 <- num(getME(m, "theta"))^2
  out[[nm]] <- list(
    beta = num(fixef(m)),
    theta = num(getME(m, "theta")),
    loglik = num(logLik(m)),
    icc_latent = s2 / (s2 + pi^2 / 3)
  )
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(here, "reference.json"))
