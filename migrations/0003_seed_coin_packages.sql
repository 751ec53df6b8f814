-- Custom migration: the default coin packages (SPEC §6.1). Admins edit them through /api/admin/packages.
INSERT INTO `coin_packages` (`id`, `coins`, `price`, `bonus_coins`, `currency`, `is_active`, `display_order`, `badge`, `created_at`, `updated_at`) VALUES
  ('pkg_100', 100, 10000, 0, 'IDR', 1, 1, NULL, 0, 0),
  ('pkg_500', 500, 45000, 50, 'IDR', 1, 2, NULL, 0, 0),
  ('pkg_1000', 1000, 85000, 150, 'IDR', 1, 3, 'popular', 0, 0),
  ('pkg_5000', 5000, 400000, 1000, 'IDR', 1, 4, 'best value', 0, 0);
