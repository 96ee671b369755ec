# Reference values for trialkit's logistic GLMM with an LA covariate on its natural scale.
# A tight PIRLS tolerance (tolPwrss = 1e-13) as in tests/reference/robust: the default 1e-7
# limits the accuracy of the Laplace deviance.
# glmer on the unscaled covariate (caseload ~ 1,000) and on scale(caseload): the same optimum.
# Run from the repository root after make_data.py:
#   Rscript tests/reference/glmm/make_reference.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- "tests/reference/glmm"
num <- function(x) unname(as.numeric(x))
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13, optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                     check.conv.singular = "ignore", check.conv.grad = "ignore",
                     check.scaleX = "ignore")
fit_one <- function(d, scaled) {
  d$treat <- as.numeric(d$arm == "intervention")
  if (scaled) d$caseload <- as.numeric(scale(d$caseload))
  m <- glmer(retained ~ treat + caseload + x + (1 | la), data = d, family = binomial,
             nAGQ = 1, control = ctrl)
  list(
    terms = names(fixef(m)),
    beta = num(fixef(m)),
    vcov = unname(as.matrix(vcov(m, use.hessian = TRUE))),
    theta = num(getME(m, "theta")),
    loglik = num(logLik(m)),
    singular = isSingular(m),
    center = if (scaled) mean(d$caseload) else 0
  )
}
out <- list()
for (nm in c("caseload", "boundary")) {
  d <- read.csv(file.path(here, paste0(nm, ".csv")), stringsAsFactors = FALSE)
  raw <- d
  out[[nm]] <- list(
    caseload_mean = mean(raw$caseload), caseload_sd = sd(raw$caseload),
    unscaled = fit_one(d, FALSE), scaled = fit_one(d, TRUE)
  )
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "reference.json"))
