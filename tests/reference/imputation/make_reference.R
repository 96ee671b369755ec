# Reference values for trialkit's multilevel multiple imputation and pooling.
# Run from the repository root after make_data.py:
#   Rscript tests/reference/imputation/make_reference.R
# Writes tests/reference/imputation/reference.json (digits = NA).
#
# 1. pooling: lmer + pbkrtest (Kenward-Roger) on each of the 5 stored completed datasets,
#    pooled by mitml::testEstimates with df.com = the mean KR df (Barnard-Rubin) and
#    without df.com (Rubin's large-sample df);
# 2. jomo: jomo1rancon (2-level joint model, default priors) on two_level.csv with
#    nburn = 1000, nbetween = 20, nimp = 1000: mean and variance over the imputations of
#    each missing value, posterior means/SDs of the parameters from a 20,000-sweep
#    jomo1rancon.MCMCchain, and the MI estimate of the treatment effect (lmer on every
#    completed dataset, Rubin's rules);
# 3. three-level: lme4 REML fit of the observed rows of three_level.csv.
suppressPackageStartupMessages({
  library(lme4); library(pbkrtest); library(mitml); library(jomo); library(jsonlite)
})
here <- "tests/reference/imputation"
dd <- file.path(here, "data")
num <- function(x) unname(as.numeric(x))
out <- list()

# ---- 1. pooling -------------------------------------------------------------------------
comp <- read.csv(file.path(dd, "completed.csv"))
m <- max(comp$imp)
qhat <- list(); uhat <- list(); dfs <- list()
for (i in seq_len(m)) {
  d <- comp[comp$imp == i, ]
  f <- lmer(y ~ treat + x + (1 | la), data = d, REML = TRUE)
  V <- as.matrix(vcovAdj(f))
  b <- fixef(f)
  qhat[[i]] <- b
  uhat[[i]] <- V
  dfs[[i]] <- sapply(seq_along(b), function(j) {
    L <- rep(0, length(b)); L[j] <- 1
    get_Lb_ddf(f, L)
  })
}
Q <- do.call(rbind, qhat)
U <- do.call(rbind, lapply(uhat, diag))
D <- do.call(rbind, dfs)
pooled <- list()
for (j in 2:3) {
  name <- colnames(Q)[j]
  # one parameter: qhat named scalars, uhat 1 x 1 matrices (a bare scalar would go through diag())
  ql <- lapply(seq_len(m), function(i) setNames(Q[i, j], name))
  ul <- lapply(seq_len(m), function(i) matrix(U[i, j], 1, 1))
  br <- testEstimates(qhat = ql, uhat = ul, df.com = mean(D[, j]))$estimates
  rb <- testEstimates(qhat = ql, uhat = ul)$estimates
  pooled[[name]] <- list(
    estimates = num(Q[, j]), variances = num(U[, j]), kr_df = num(D[, j]),
    df_complete = mean(D[, j]),
    barnard_rubin = list(estimate = num(br[1, 1]), std_error = num(br[1, 2]),
                         statistic = num(br[1, 3]), df = num(br[1, 4]), p_value = num(br[1, 5]),
                         riv = num(br[1, 6]), fmi = num(br[1, 7])),
    rubin = list(estimate = num(rb[1, 1]), std_error = num(rb[1, 2]), statistic = num(rb[1, 3]),
                 df = num(rb[1, 4]), p_value = num(rb[1, 5]), riv = num(rb[1, 6]),
                 fmi = num(rb[1, 7]))
  )
}
out$pooling <- pooled

# ---- 2. jomo ----------------------------------------------------------------------------
d2 <- read.csv(file.path(dd, "two_level.csv"))
n <- nrow(d2)
Y <- data.frame(y = d2$y)
X <- data.frame(int = rep(1, n), treat = d2$treat, x = d2$x)
Z <- data.frame(int = rep(1, n))
clus <- match(d2$la, sort(unique(d2$la)))
set.seed(20261207)
M <- 1000
imp <- jomo1rancon(Y = Y, X = X, Z = Z, clus = clus, nburn = 1000, nbetween = 20, nimp = M,
                   output = 0)
imp <- imp[imp$Imputation > 0, ]
miss <- which(is.na(d2$y))
cells <- matrix(NA_real_, M, length(miss))
ests <- numeric(M); vars <- numeric(M); kdf <- numeric(M)
for (k in seq_len(M)) {
  dk <- imp[imp$Imputation == k, ]
  dk <- dk[order(dk$id), ]
  stopifnot(all(abs(dk$x - d2$x) < 1e-12))
  cells[k, ] <- dk$y[miss]
  dk$la <- d2$la
  f <- lmer(y ~ treat + x + (1 | la), data = dk, REML = TRUE)
  ests[k] <- fixef(f)[["treat"]]
  vars[k] <- as.matrix(vcovAdj(f))[2, 2]
  kdf[k] <- get_Lb_ddf(f, c(0, 1, 0))
}
set.seed(20261208)
ch <- jomo1rancon.MCMCchain(Y = Y, X = X, Z = Z, clus = clus, nburn = 20000, output = 0)
beta <- ch$collectbeta[, 1, ]          # p x nburn
tau2 <- ch$collectcovu[1, 1, ]
sig2 <- ch$collectomega[1, 1, ]
mi <- testEstimates(qhat = lapply(ests, function(e) c(treat = e)),
                    uhat = lapply(vars, function(v) matrix(v, 1, 1)), df.com = mean(kdf))$estimates
out$jomo <- list(
  settings = list(nburn = 1000, nbetween = 20, nimp = M, chain = 20000),
  missing_rows = num(miss - 1),
  cell_mean = num(colMeans(cells)),
  cell_var = num(apply(cells, 2, var)),
  imputed_mean = list(treated = mean(cells[, d2$treat[miss] == 1]),
                      control = mean(cells[, d2$treat[miss] == 0])),
  imputed_mean_sd = list(
    treated = sd(rowMeans(cells[, d2$treat[miss] == 1, drop = FALSE])),
    control = sd(rowMeans(cells[, d2$treat[miss] == 0, drop = FALSE]))),
  posterior_mean = list(intercept = mean(beta[1, ]), treat = mean(beta[2, ]), x = mean(beta[3, ]),
                        tau2 = mean(tau2), sigma2 = mean(sig2)),
  posterior_sd = list(intercept = sd(beta[1, ]), treat = sd(beta[2, ]), x = sd(beta[3, ]),
                      tau2 = sd(tau2), sigma2 = sd(sig2)),
  mi_treatment = list(estimate = num(mi[1, 1]), std_error = num(mi[1, 2]), df = num(mi[1, 4]),
                      sd_completed_estimates = sd(ests), mean_within_variance = mean(vars),
                      between_variance = var(ests))
)

# ---- 3. three-level REML on the observed rows --------------------------------------------
d3 <- read.csv(file.path(dd, "three_level.csv"))
d3o <- d3[!is.na(d3$y), ]
f3 <- lmer(y ~ treat + baseline + (1 | la) + (1 | la:kw), data = d3o, REML = TRUE,
           control = lmerControl(optimizer = "bobyqa"))
vc <- as.data.frame(VarCorr(f3))
out$three_level <- list(
  fixef = as.list(setNames(num(fixef(f3)), c("intercept", "treat", "baseline"))),
  se = as.list(setNames(num(sqrt(diag(vcov(f3)))), c("intercept", "treat", "baseline"))),
  tau2_la = num(vc$vcov[vc$grp == "la"]), tau2_kw = num(vc$vcov[vc$grp == "la:kw"]),
  sigma2 = num(vc$vcov[vc$grp == "Residual"])
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "reference.json"))
