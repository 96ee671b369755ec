# Reference values for trialkit's linear mixed model (lme4, lmerTest, pbkrtest).
# Run from the repository root after make_data.py:
#   Rscript tests/reference/lmm/make_reference.R
# Writes tests/reference/lmm/reference.json at full precision (digits = NA).
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite); library(nlme)
  library(clubSandwich)
})
here <- "tests/reference/lmm"
dd <- file.path(here, "data")
if (!file.exists(file.path(dd, "orthodont.csv"))) {
  o <- as.data.frame(nlme::Orthodont)
  o$Subject <- as.character(o$Subject)
  o$Sex <- as.character(o$Sex)
  write.csv(o, file.path(dd, "orthodont.csv"), row.names = FALSE)
}
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5),
                    check.conv.singular = "ignore")
cases <- list(
  two_level = list(f = y ~ treat + baseline + (1 | la)),
  unequal = list(f = y ~ treat + baseline + (1 | la)),
  singular = list(f = y ~ treat + baseline + (1 | la)),
  three_level = list(f = y ~ treat + baseline + imd + (1 | la) + (1 | la:kw)),
  three_level_singular_top = list(f = y ~ treat + baseline + (1 | la) + (1 | la:kw)),
  missing_categorical = list(f = y ~ treat + baseline + region + (1 | la) + (1 | la:kw)),
  orthodont = list(f = distance ~ female + age + (1 | Subject))
)
num <- function(x) unname(as.numeric(x))
out <- list()
for (nm in names(cases)) {
  d <- read.csv(file.path(dd, paste0(nm, ".csv")), stringsAsFactors = FALSE)
  if (nm == "orthodont") d$female <- as.numeric(d$Sex == "Female")
  if ("region" %in% names(d)) d$region <- factor(d$region, levels = sort(unique(d$region)))
  f <- cases[[nm]]$f
  m <- lmerTest::lmer(f, data = d, REML = TRUE, control = ctrl)
  mm <- lme4::lmer(f, data = d, REML = FALSE, control = ctrl)
  vc <- as.data.frame(VarCorr(m))
  vcm <- as.data.frame(VarCorr(mm))
  X <- getME(m, "X")
  p <- ncol(X)
  sm <- summary(m)$coefficients
  mr <- as(m, "lmerMod")
  Va <- as.matrix(vcovAdj(mr))
  kr_df <- sapply(seq_len(p), function(j) { L <- matrix(0, 1, p); L[j] <- 1; get_Lb_ddf(mr, L) })
  # multi-row contrast: treatment and baseline-type second term jointly
  L2 <- matrix(0, 2, p); L2[1, 2] <- 1; L2[2, 3] <- 1
  kr2 <- KRmodcomp(mr, L2)$test
  sat2 <- lmerTest::contest(m, L2, ddf = "Satterthwaite")
  ct <- coef_test(mr, vcov = "CR2", test = "Satterthwaite")
  out[[nm]] <- list(
    formula = paste(deparse(f), collapse = ""),
    n = nrow(X),
    terms = colnames(X),
    reml = list(
      beta = num(fixef(m)), vcov = unname(as.matrix(vcov(m))),
      theta = num(getME(m, "theta")),
      varcomp_groups = vc$grp, varcomp = num(vc$vcov),
      loglik = num(logLik(m)), sigma = num(sigma(m)),
      singular = isSingular(m),
      satterthwaite_df = num(sm[, "df"]), satterthwaite_se = num(sm[, "Std. Error"]),
      kr_vcov = unname(Va), kr_df = num(kr_df),
      kr_multi = list(L = L2, F = num(kr2["Ftest", "stat"]), ndf = num(kr2["Ftest", "ndf"]),
                      ddf = num(kr2["Ftest", "ddf"]), scaling = num(kr2["Ftest", "F.scaling"])),
      sat_multi = list(F = num(sat2[["F value"]]), ddf = num(sat2[["DenDF"]])),
      cr2 = list(se = num(ct$SE), df = num(ct$df_Satt))
    ),
    ml = list(
      beta = num(fixef(mm)), vcov = unname(as.matrix(vcov(mm))),
      theta = num(getME(mm, "theta")), varcomp_groups = vcm$grp, varcomp = num(vcm$vcov),
      loglik = num(logLik(mm))
    ),
    versions = list(lme4 = as.character(packageVersion("lme4")),
                    lmerTest = as.character(packageVersion("lmerTest")),
                    pbkrtest = as.character(packageVersion("pbkrtest")),
                    clubSandwich = as.character(packageVersion("clubSandwich")),
                    R = R.version.string)
  )
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(here, "reference.json"))
cat("wrote", file.path(here, "reference.json"), "\n")
