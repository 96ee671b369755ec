# Reference values for trialkit's cluster-robust, GLMM and GEE code.
# Run from this directory:  Rscript reference.R   (writes reference.json)
suppressPackageStartupMessages({
  library(clubSandwich); library(lme4); library(geepack); library(jsonlite)
})
res <- list(versions = list(R = R.version.string,
                            clubSandwich = as.character(packageVersion("clubSandwich")),
                            lme4 = as.character(packageVersion("lme4")),
                            geepack = as.character(packageVersion("geepack"))))
df_col <- function(ct) if ("df_Satt" %in% names(ct)) ct$df_Satt else ct$df
one <- function(name) {
  d <- read.csv(paste0("data_", name, ".csv"))
  d <- d[order(d$cluster), ]
  out <- list()
  m <- lm(y ~ treat + x + z, data = d)
  out$lm <- list(coef = unname(coef(m)))
  for (ty in c("CR0", "CR1", "CR1S", "CR2", "CR3")) {
    V <- vcovCR(m, cluster = d$cluster, type = ty)
    ct <- coef_test(m, vcov = V, test = "Satterthwaite")
    out$lm[[ty]] <- list(vcov = unname(as.matrix(V)), se = unname(ct$SE), df = unname(df_col(ct)))
  }
  w <- Wald_test(m, constraints = constrain_zero(2:3), vcov = "CR2", cluster = d$cluster, test = "HTZ")
  out$lm$HTZ <- list(Fstat = w$Fstat, df_num = w$df_num, df_denom = w$df_denom, p_val = w$p_val)
  fm <- lmer(y ~ treat + x + z + (1 | cluster), data = d, REML = TRUE,
             control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
  vc <- as.data.frame(VarCorr(fm))
  out$lmer <- list(beta = unname(fixef(fm)), tau2 = vc$vcov[1], sigma2 = vc$vcov[2])
  for (ty in c("CR0", "CR2")) {
    V <- vcovCR(fm, type = ty)
    ct <- coef_test(fm, vcov = V, test = "Satterthwaite")
    out$lmer[[ty]] <- list(vcov = unname(as.matrix(V)), se = unname(ct$SE), df = unname(df_col(ct)))
  }
  # three levels: sub-clusters = (row number within cluster) %% 3
  d$sub <- ave(seq_along(d$cluster), d$cluster, FUN = seq_along) %% 3
  fm3 <- lmer(y ~ treat + x + z + (1 | cluster / sub), data = d, REML = TRUE,
              control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
  vc3 <- as.data.frame(VarCorr(fm3))
  out$lmer3 <- list(beta = unname(fixef(fm3)), grp = vc3$grp, vcov_components = vc3$vcov)
  V <- vcovCR(fm3, type = "CR2")
  ct <- coef_test(fm3, vcov = V, test = "Satterthwaite")
  out$lmer3$CR2 <- list(vcov = unname(as.matrix(V)), se = unname(ct$SE), df = unname(df_col(ct)))
  gm3 <- glmer(yb ~ treat + x + z + (1 | cluster / sub), data = d, family = binomial,
               control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13,
                                      optCtrl = list(rhoend = 1e-12)))
  out$glmer3_agq1_tight <- list(beta = unname(fixef(gm3)), theta = unname(getME(gm3, "theta")),
    theta_names = names(getME(gm3, "theta")), loglik = as.numeric(logLik(gm3)),
    se = unname(sqrt(diag(as.matrix(vcov(gm3))))))
  for (q in c(1, 10)) {
    gm <- glmer(yb ~ treat + x + z + (1 | cluster), data = d, family = binomial, nAGQ = q,
                control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
    out[[paste0("glmer_agq", q)]] <- list(beta = unname(fixef(gm)), theta = unname(getME(gm, "theta")),
      loglik = as.numeric(logLik(gm)), se = unname(sqrt(diag(as.matrix(vcov(gm))))))
    # the same fit with a tight PIRLS tolerance (default tolPwrss = 1e-7 limits the accuracy of
    # the Laplace deviance, see README)
    gm <- glmer(yb ~ treat + x + z + (1 | cluster), data = d, family = binomial, nAGQ = q,
                control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13,
                                       optCtrl = list(rhoend = 1e-12)))
    out[[paste0("glmer_agq", q, "_tight")]] <- list(beta = unname(fixef(gm)), theta = unname(getME(gm, "theta")),
      loglik = as.numeric(logLik(gm)), se = unname(sqrt(diag(as.matrix(vcov(gm))))))
  }
  for (cs in c("independence", "exchangeable")) {
    g <- geeglm(yb ~ treat + x + z, id = factor(cluster), data = d, family = binomial, corstr = cs,
                control = geese.control(epsilon = 1e-12, maxit = 200))
    s <- summary(g)
    out[[paste0("gee_bin_", cs)]] <- list(coef = unname(coef(g)), se = unname(s$coefficients[, "Std.err"]),
      alpha = if (cs == "exchangeable") unname(s$corr$Estimate) else NULL,
      scale = unname(s$dispersion$Estimate))
  }
  g <- geeglm(y ~ treat + x + z, id = factor(cluster), data = d, family = gaussian, corstr = "exchangeable",
                control = geese.control(epsilon = 1e-12, maxit = 200))
  s <- summary(g)
  out$gee_gau_exchangeable <- list(coef = unname(coef(g)), se = unname(s$coefficients[, "Std.err"]),
      alpha = unname(s$corr$Estimate), scale = unname(s$dispersion$Estimate))
  out
}
res$a <- one("a")
res$b <- one("b")
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "reference.json")
