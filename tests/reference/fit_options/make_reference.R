# Reference values for trialkit fit options: ML fit + Kenward-Roger (pbkrtest refits by REML)
# and nlme's containment ("between-within" per level) denominator df.
# Run from the repository root after make_data.py:
#   Rscript tests/reference/fit_options/make_reference.R
suppressPackageStartupMessages({
  library(lme4); library(pbkrtest); library(nlme); library(jsonlite)
})
here <- "tests/reference/fit_options"
d <- read.csv(file.path(here, "three_level.csv"), stringsAsFactors = FALSE)
num <- function(x) unname(as.numeric(x))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5),
                    check.conv.singular = "ignore")
f <- y ~ treat + caseload + female + baseline + (1 | la) + (1 | la:kw)
ml <- lmer(f, data = d, REML = FALSE, control = ctrl)
reml <- lmer(f, data = d, REML = TRUE, control = ctrl)
p <- length(fixef(ml))
# pbkrtest on the ML fit: vcovAdj / get_Lb_ddf / KRmodcomp refit the model by REML
Va_ml <- as.matrix(vcovAdj(ml))
Va_reml <- as.matrix(vcovAdj(reml))
# one-row KRmodcomp per coefficient (KRmodcomp refits an ML model by REML; get_Lb_ddf on an
# ML fit would mix the ML vcov into the df formula, so it is not used here)
kr_df <- sapply(seq_len(p), function(j) {
  L <- matrix(0, 1, p); L[j] <- 1; KRmodcomp(ml, L)$test["Ftest", "ddf"]
})
L2 <- matrix(0, 2, p); L2[1, 2] <- 1; L2[2, 4] <- 1
kr2 <- KRmodcomp(ml, L2)$test
vcm <- as.data.frame(VarCorr(ml))
# nlme: containment df of lme (fitted by REML; the df rule does not depend on the fit)
lm3 <- lme(y ~ treat + caseload + female + baseline, random = ~ 1 | la/kw, data = d,
           control = lmeControl(tolerance = 1e-12, msMaxIter = 500))
tt <- summary(lm3)$tTable
out <- list(
  formula = paste(deparse(f), collapse = ""),
  terms = names(fixef(ml)),
  ml = list(
    beta = num(fixef(ml)), loglik = num(logLik(ml)),
    varcomp_groups = vcm$grp, varcomp = num(vcm$vcov)
  ),
  reml = list(beta = num(fixef(reml)), loglik = num(logLik(reml))),
  kr_from_ml_fit = list(
    se = num(sqrt(diag(Va_ml))), df = num(kr_df),
    same_as_reml_fit = isTRUE(all.equal(Va_ml, Va_reml, tolerance = 1e-10)),
    multi = list(L = L2, F = num(kr2["Ftest", "stat"]), ddf = num(kr2["Ftest", "ddf"]),
                 scale = num(kr2["Ftest", "F.scaling"]))
  ),
  nlme = list(terms = rownames(tt), df = num(tt[, "DF"]), beta = num(tt[, "Value"]))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "reference.json"))
