# Reference values for trialkit.models.variance_components and feasibility.planning.
# Run from the repository root:  Rscript tests/reference/planning/make_reference.R [out.json]
# Needs lme4 and jsonlite.  Independent of trialkit: the REML deviance comes from
# lme4's devFunOnly = TRUE (a function of lme4's theta, the random-effect SDs
# relative to the residual SD); the profile of an ICC is minimised here with
# optimize() over the other theta and inverted with uniroot().
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[[1]] else "tests/reference/planning/reference.json"
dir <- "tests/reference/planning/data"
alpha <- 0.05
crit <- qchisq(1 - alpha, 1)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-2, rhoend = 1e-12, maxfun = 1e5),
                    check.conv.singular = "ignore")

icc_of <- function(th, l) th[l]^2 / (1 + sum(th^2))

profile_fun <- function(devf, L, l, tmax) {
  # D(r): min over the other theta of the REML deviance with ICC_l = r
  function(r) {
    if (L == 1) return(devf(sqrt(r / (1 - r))))
    g <- function(t) {
      th <- numeric(2)
      th[-l] <- t
      th[l] <- sqrt(r * (1 + t^2) / (1 - r))
      devf(th)
    }
    grid <- tmax * seq(0, 1, length.out = 81)^2
    d <- sapply(grid, g)
    i <- which.min(d)
    lo <- grid[max(i - 1, 1)]
    hi <- grid[min(i + 1, length(grid))]
    o <- optimize(g, c(lo, hi), tol = 1e-11)
    min(o$objective, d[i])
  }
}

one <- function(name, three) {
  dat <- read.csv(file.path(dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  if (three) {
    f <- y ~ 1 + (1 | la) + (1 | la:kw)
  } else {
    f <- y ~ 1 + (1 | la)
  }
  fit <- lmer(f, data = dat, REML = TRUE, control = ctrl)
  devf <- lmer(f, data = dat, REML = TRUE, control = ctrl, devFunOnly = TRUE)
  th_lme4 <- getME(fit, "theta")
  # lme4 orders terms by decreasing number of levels: put the LA term first
  ord <- if (three) c(grep("^la\\.", names(th_lme4)), grep("^la:kw", names(th_lme4))) else 1
  th <- unname(th_lme4[ord])
  dev_top <- function(t) devf(t[order(ord)])  # back to lme4's order
  L <- length(th)
  dmin <- dev_top(th)
  vc <- as.data.frame(VarCorr(fit))
  s2 <- sigma(fit)^2
  psi <- c(th^2 * s2, s2)
  levels <- if (three) c("la", "kw") else "la"
  res <- list(
    n_obs = nrow(dat),
    intercept = unname(fixef(fit)[1]),
    theta = th,
    deviance = unname(REMLcrit(fit)),
    deviance_devfun = dmin,
    variance_components = as.list(setNames(psi, c(levels, "residual"))),
    icc = list(), icc_conf_low = list(), icc_conf_high = list(), profile = list()
  )
  tmax <- max(5, 20 * max(th))
  for (l in seq_len(L)) {
    D <- profile_fun(dev_top, L, l, tmax)
    rhat <- icc_of(th, l)
    f0 <- function(r) D(r) - dmin - crit
    lo <- if (f0(0) <= 0) 0 else uniroot(f0, c(0, rhat), tol = 1e-12)$root
    top <- rhat
    repeat {
      top <- 1 - (1 - top) / 2
      if (f0(top) > 0) break
    }
    hi <- uniroot(f0, c(rhat, top), tol = 1e-12)$root
    grid <- c(0, 0.01, 0.05, 0.1, 0.2, 0.3)
    res$icc[[levels[l]]] <- rhat
    res$icc_conf_low[[levels[l]]] <- lo
    res$icc_conf_high[[levels[l]]] <- hi
    res$profile[[levels[l]]] <- list(r = grid, deviance = sapply(grid, function(r) D(r) - dmin))
  }
  if (three) {
    # descriptive statistics for the planning table
    n <- nrow(dat)
    s <- sd(dat$y)
    res$sd <- list(sd = s, conf_low = s * sqrt((n - 1) / qchisq(1 - alpha / 2, n - 1)),
                   conf_high = s * sqrt((n - 1) / qchisq(alpha / 2, n - 1)))
    ct <- cor.test(dat$base, dat$y, conf.level = 1 - alpha)
    res$correlation <- list(r = unname(ct$estimate), conf_low = ct$conf.int[1],
                            conf_high = ct$conf.int[2])
    sizes <- as.numeric(table(dat$la))
    res$cluster_size <- list(mean = mean(sizes), cv = sd(sizes) / mean(sizes))
  }
  res
}

ref <- list(
  generator = "tests/reference/planning/make_reference.R",
  r_version = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  alpha = alpha,
  datasets = list(
    three_unequal = one("three_unequal", TRUE),
    three_balanced = one("three_balanced", TRUE),
    three_small_la = one("three_small_la", TRUE),
    two_level = one("two_level", FALSE)
  )
)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
