# Reference values for trialkit.power.analytic, computed independently in R from the
# published formulas (Dong & Maynard 2013 / PowerUpR definitions; Eldridge et al. 2006;
# van Breukelen et al. 2007; Donner & Klar 2000) with R's own qt/pt (noncentral t) and
# uniroot/integrate. PowerUpR itself is not installable here; its definitions are
#   MDES = (t1 + t2) * SE, t1 = |qt(alpha/2, df)| (two-tailed) or |qt(alpha, df)|,
#   t2 = |qt(power, df)|, CI = MDES -/+ t1 * SE,
#   power = 1 - pt(t1, df, ncp) [+ pt(-t1, df, ncp) two-tailed], ncp = ES / SE.
# Run:  Rscript make_reference.R   (writes reference.json next to this script)
library(jsonlite)

se_cont <- function(levels, K, n = NA, J = NA, rho = 0, rho2 = 0, r21 = 0, r22 = 0, r23 = 0,
                    P = .5, cv = 0, cvm = "eldridge") {
  if (levels == 2) {
    top <- rho * (1 - r22); low <- (1 - rho) * (1 - r21) / n
  } else {
    top <- rho * (1 - r23); low <- rho2 * (1 - r22) / J + (1 - rho - rho2) * (1 - r21) / (J * n)
  }
  f <- 1
  if (cv > 0) {
    if (cvm == "eldridge") f <- (top * (1 + cv^2) + low) / (top + low)
    else { lam <- top / (top + low); f <- 1 / (1 - cv^2 * lam * (1 - lam)) }
  }
  sqrt((top + low) * f / (P * (1 - P) * K))
}
crit <- function(alpha, df, two) if (two) qt(1 - alpha / 2, df) else qt(1 - alpha, df)
pow <- function(lam, df, alpha, two) {
  t1 <- crit(alpha, df, two)
  p <- pt(t1, df, lam, lower.tail = FALSE)
  if (two) p <- p + pt(-t1, df, lam)
  p
}
mult <- function(power, alpha, df, two, kind) {
  if (kind == "powerup") return(crit(alpha, df, two) + qt(power, df))
  uniroot(function(l) pow(l, df, alpha, two) - power, c(0, 60), tol = 1e-15)$root
}

cases <- list(
  list(id = "cra2_basic", levels = 2, K = 20, n = 25, rho = 0.1),
  list(id = "cra2_cov", levels = 2, K = 44, n = 20, rho = 0.2, r21 = 0.5, r22 = 0.3, g = 5),
  list(id = "cra2_onetail_P", levels = 2, K = 30, n = 10, rho = 0.15, P = 0.4, two = FALSE, alpha = 0.1),
  list(id = "cra3_dm", levels = 3, K = 60, J = 3, n = 15, rho = 0.06, rho2 = 0.17),
  list(id = "cra3_cov", levels = 3, K = 40, J = 4, n = 20, rho = 0.1, rho2 = 0.1, r21 = 0.5, r22 = 0.4, r23 = 0.5, g = 1),
  list(id = "cra3_pilot", levels = 3, K = 12, J = 10, n = 12, rho = 0.05, rho2 = 0.1, g = 0),
  list(id = "cra3_pilot_g1", levels = 3, K = 12, J = 10, n = 12, rho = 0.05, rho2 = 0.1, r21 = 0.3, r23 = 0.4, g = 1),
  list(id = "cra2_cv_eldridge", levels = 2, K = 24, n = 20, rho = 0.05, cv = 0.6, cvm = "eldridge"),
  list(id = "cra2_cv_vb", levels = 2, K = 24, n = 20, rho = 0.05, cv = 0.6, cvm = "van-breukelen"),
  list(id = "cra3_cv_vb", levels = 3, K = 12, J = 10, n = 12, rho = 0.05, rho2 = 0.1, cv = 0.4, cvm = "van-breukelen")
)
out <- list()
for (cs in cases) {
  g <- if (is.null(cs$g)) 0 else cs$g
  two <- if (is.null(cs$two)) TRUE else cs$two
  alpha <- if (is.null(cs$alpha)) 0.05 else cs$alpha
  P <- if (is.null(cs$P)) 0.5 else cs$P
  dflt <- function(x) if (is.null(x)) 0 else x
  se <- se_cont(cs$levels, cs$K, if (is.null(cs$n)) NA else cs$n, if (is.null(cs$J)) NA else cs$J,
                cs$rho, dflt(cs$rho2), dflt(cs$r21), dflt(cs$r22), dflt(cs$r23), P, dflt(cs$cv),
                if (is.null(cs$cvm)) "eldridge" else cs$cvm)
  df <- cs$K - g - 2
  t1 <- crit(alpha, df, two)
  res <- list(se = se, df = df)
  for (kind in c("powerup", "exact")) {
    m <- mult(0.8, alpha, df, two, kind)
    res[[paste0("mdes_", kind)]] <- m * se
    res[[paste0("conf_low_", kind)]] <- m * se - t1 * se
    res[[paste0("conf_high_", kind)]] <- m * se + t1 * se
  }
  res$power_at_0.3 <- pow(0.3 / se, df, alpha, two)
  res$power_at_powerup_mdes <- pow(res$mdes_powerup / se, df, alpha, two)
  out[[cs$id]] <- list(input = cs, output = res)
}

# required clusters for the pilot design (3 levels) at ES 0.3 and 0.2, exact and powerup
req <- list()
for (es in c(0.3, 0.2)) {
  for (kind in c("exact", "powerup")) {
    K <- 3
    repeat {
      se <- se_cont(3, K, 12, 10, 0.05, 0.1)
      df <- K - 2
      okk <- if (kind == "exact") pow(es / se, df, 0.05, TRUE) >= 0.8 else
        mult(0.8, 0.05, df, TRUE, "powerup") * se <= es + 1e-12
      if (okk) break
      K <- K + 1
    }
    req[[paste0("es", es, "_", kind)]] <- K
  }
}

# binary outcome, 2 levels, k clusters per arm, m per cluster
bin <- list()
for (b in list(list(id = "bin_t", K = 20, m = 30, rho = 0.05, p0 = 0.3, p1 = 0.45, test = "t"),
               list(id = "bin_z", K = 40, m = 15, rho = 0.02, p0 = 0.6, p1 = 0.7, test = "z"))) {
  k <- b$K / 2
  de <- 1 + (b$m - 1) * b$rho
  se <- sqrt((b$p1 * (1 - b$p1) + b$p0 * (1 - b$p0)) * de / (k * b$m))
  lam <- (b$p1 - b$p0) / se
  if (b$test == "t") {
    df <- 2 * (k - 1); p <- pow(lam, df, 0.05, TRUE)
  } else {
    z <- qnorm(0.975); p <- pnorm(z - lam, lower.tail = FALSE) + pnorm(-z - lam)
  }
  bin[[b$id]] <- list(input = b, output = list(se = se, power = p))
}

# latent -> proportion scale ICC
lat <- list()
for (cfg in list(c(0.1, 0.3), c(0.2, 0.1), c(0.05, 0.5))) {
  rl <- cfg[1]; pi0 <- cfg[2]
  z <- qnorm(pi0)
  probit <- integrate(function(r) exp(-z^2 / (1 + r)) / (2 * pi * sqrt(1 - r^2)), 0, rl,
                      rel.tol = 1e-13)$value / (pi0 * (1 - pi0))
  s <- sqrt((pi^2 / 3) * rl / (1 - rl))
  m1 <- function(b) integrate(function(u) plogis(b + u) * dnorm(u, 0, s), -Inf, Inf, rel.tol = 1e-13)$value
  b0 <- uniroot(function(b) m1(b) - pi0, c(-30, 30), tol = 1e-14)$root
  m2 <- integrate(function(u) plogis(b0 + u)^2 * dnorm(u, 0, s), -Inf, Inf, rel.tol = 1e-13)$value
  logit <- (m2 - pi0^2) / (pi0 * (1 - pi0))
  lat[[length(lat) + 1]] <- list(icc_latent = rl, prevalence = pi0, probit = probit, logit = logit)
}

writeLines(toJSON(list(continuous = out, required_clusters = req, binary = bin, latent_icc = lat),
                  auto_unbox = TRUE, digits = NA, pretty = TRUE), "reference.json")
