/*
 * Unit test: conf/apigw.conf documents every key of every key table
 * (config_keys.h), with the table's default and bounds, so that the file
 * operators copy can never drift from what the code does.
 *
 * The file (found through $top_srcdir, else "../..") has two layouts:
 *
 *   - a section that is a group (redis, gateway, rate_limit, ...) starts
 *     with a banner "# <name> -- ..." and lists each key as an assignment
 *     at the group's top level, "  key = value;", under its comment.  A key
 *     with a default must be assigned exactly its default; a key without
 *     one (a required key, or one whose absence means "unset") may be an
 *     example, also commented out ("  #requests_per_hour = 1000;");
 *
 *   - a section that is a list of groups (routes, plugins) describes the
 *     keys of one entry in a comment block "# Keys of a <thing>:", one
 *     "#   key   text" entry each; the text must say "required" for a
 *     required key and "Default <value>" (or "Default: <value>") for a
 *     key with a default.
 *
 * In both, an integer key's text must give its bounds as "<min> to <max>",
 * and a policy must show the name it defaults to.  The checker runs on the
 * real file and tables, and on altered copies to show that it notices a
 * wrong default and an undocumented key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

/* The documentation, split into lines (owned). */
struct doc {
	char **line;
	size_t n;
};

struct checker {
	const struct doc *doc;
	struct buf problems; /* one "key: what" per line */
	size_t n_problems;
	const struct config_key *seen[32]; /* sub-tables checked already */
	size_t n_seen;
};

static void problem(struct checker *ck, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct checker *ck, const char *path, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	buf_printf(&ck->problems, "conf/apigw.conf: %s: %s\n", path, what);
	ck->n_problems++;
}

static void
doc_split(const char *text, struct doc *doc)
{
	const char *p = text, *nl;

	doc->line = NULL;
	doc->n = 0;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		doc->line =
		    xrealloc(doc->line, (doc->n + 1) * sizeof *doc->line);
		doc->line[doc->n++] = xstrndup(p, (size_t)(nl - p));
		p = *nl == '\n' ? nl + 1 : nl;
	}
}

static void
doc_free(struct doc *doc)
{
	size_t i;

	for (i = 0; i < doc->n; i++)
		free(doc->line[i]);
	free(doc->line);
}

static char *
read_whole(const char *path)
{
	struct buf b;
	char chunk[4096], *s;
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return NULL;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	s = xstrdup(buf_cstr(&b));
	buf_cleanup(&b);
	return s;
}

static char *
doc_path(void)
{
	const char *top = getenv("top_srcdir");

	return xasprintf("%s/conf/apigw.conf", top != NULL ? top : "../..");
}

/* ---- the default of a key, as the file would write it ---- */

static void
render_strs(struct buf *b, const char *const *list)
{
	size_t i;

	buf_puts(b, "[");
	for (i = 0; list[i] != NULL; i++)
		buf_printf(b, "%s \"%s\"", i > 0 ? "," : "", list[i]);
	buf_puts(b, " ]");
}

/*
 * Writes e's default into b as conf/apigw.conf shows it ("200", "true",
 * "\"X-API-Key\"", "[ 502, 503, 504 ]").  Returns 0, or -1 when the key has
 * no default (required, or absent means unset).
 */
static int
render_default(const struct config_key *e, struct buf *b)
{
	char name[16];
	size_t i;
	const char *sep = "";

	buf_reset(b);
	if (e->flags & (CKF_REQUIRED | CKF_NO_DEFAULT))
		return -1;
	if (e->def_doc != NULL) {
		buf_puts(b, e->def_doc);
		return 0;
	}
	switch (e->type) {
	case CK_LONG:
	case CK_INT: buf_printf(b, "%lld", e->def); return 0;
	case CK_BOOL: buf_puts(b, e->def ? "true" : "false"); return 0;
	case CK_ENUM: buf_printf(b, "\"%s\"", e->names[e->def]); return 0;
	case CK_STRING:
		if (e->def_s == NULL)
			return -1;
		buf_printf(b, "\"%s\"", e->def_s);
		return 0;
	case CK_STRLIST:
	case CK_JOINED:
	case CK_CIDRS: render_strs(b, e->def_list); return 0;
	case CK_INTLIST:
		buf_puts(b, "[");
		for (i = 0; e->def_ints[i] != 0; i++)
			buf_printf(
			    b, "%s %d", i > 0 ? "," : "", e->def_ints[i]);
		buf_puts(b, " ]");
		return 0;
	case CK_METHODS:
		buf_puts(b, "[");
		for (i = 0; i < 32; i++) {
			if (!(e->def & (1LL << i)))
				continue;
			http_method_list(1U << i, name, sizeof name);
			buf_printf(b, "%s \"%s\"", sep, name);
			sep = ",";
		}
		buf_puts(b, " ]");
		return 0;
	case CK_GROUP:
	case CK_POLICY:
	case CK_LIST:
	case CK_SETTING: return -1;
	}
	return -1;
}

static int
is_integer(const struct config_key *e)
{
	return e->type == CK_LONG || e->type == CK_INT || e->type == CK_INTLIST;
}

/* ---- finding a key's documentation ---- */

/* Returns the text after '#' and blanks, or NULL if line is no comment. */
static const char *
comment_text(const char *line)
{
	line += strspn(line, " \t");
	if (*line != '#')
		return NULL;
	line++;
	return line + strspn(line, " \t");
}

/* Appends a comment line's text to b, separated by one space. */
static void
add_text(struct buf *b, const char *line)
{
	const char *t = comment_text(line);

	if (t == NULL)
		t = line + strspn(line, " \t");
	if (*t == '\0')
		return;
	if (b->len > 0)
		buf_putc(b, ' ');
	buf_puts(b, t);
}

/*
 * Finds the section "# name -- ..." and sets [*start, *end) to its lines,
 * up to the next section's banner.  Returns 0 or -1.
 */
static int
find_section(
    const struct doc *doc, const char *name, size_t *start, size_t *end)
{
	char *head = xasprintf("# %s -- ", name);
	size_t i, hl = strlen(head);
	int rc = -1;

	for (i = 0; i < doc->n; i++)
		if (strncmp(doc->line[i], head, hl) == 0)
			break;
	if (i == doc->n)
		goto out;
	*start = i;
	for (i++; i < doc->n; i++)
		if (strncmp(doc->line[i], "# ", 2) == 0 &&
		    strstr(doc->line[i], " -- ") != NULL &&
		    strncmp(doc->line[i - 1], "####", 4) == 0)
			break;
	*end = i < doc->n ? i - 1 : doc->n;
	rc = 0;
out:
	free(head);
	return rc;
}

/*
 * In a group section, finds "  name = value;" (or "  #name = value;") at
 * the group's top level.  Returns the line index, or -1; *commented says
 * which form it was, value gets the text between "= " and the last ';'.
 */
static long
find_assignment(const struct doc *doc, size_t start, size_t end,
    const char *name, int *commented, struct buf *value)
{
	const char *p, *semi;
	size_t i, nl = strlen(name);

	for (i = start; i < end; i++) {
		p = doc->line[i];
		if (strncmp(p, "  ", 2) != 0 || p[2] == ' ')
			continue;
		p += 2;
		*commented = *p == '#';
		if (*commented)
			p++;
		if (strncmp(p, name, nl) != 0)
			continue;
		p += nl;
		p += strspn(p, " ");
		if (*p != '=')
			continue;
		p++;
		p += strspn(p, " ");
		semi = strrchr(p, ';');
		if (semi == NULL)
			continue;
		buf_reset(value);
		buf_append(value, p, (size_t)(semi - p));
		return (long)i;
	}
	return -1;
}

/*
 * The block an assignment at line k belongs to: the comment and assignment
 * lines above it, back to a blank line or the group's opening, so that
 * "# Each 1 to 10." covers the requests_per_* assignments listed under it.
 */
static void
assignment_block(const struct doc *doc, size_t start, size_t k, struct buf *b)
{
	size_t i = k;

	while (i > start &&
	    doc->line[i - 1][strspn(doc->line[i - 1], " ")] != '\0' &&
	    (doc->line[i - 1][0] == ' ' || doc->line[i - 1][0] == '#'))
		i--;
	buf_reset(b);
	for (; i <= k; i++)
		add_text(b, doc->line[i]);
}

/*
 * In a list section, finds the entry of name in the "# Keys of a ...:"
 * block and puts its text into b.  Returns 0 or -1.
 */
static int
find_list_entry(const struct doc *doc, size_t start, size_t end,
    const char *name, struct buf *b)
{
	size_t i, nl = strlen(name);
	const char *p;
	int in = 0;

	for (i = start; i < end; i++)
		if (strncmp(doc->line[i], "# Keys of a", 11) == 0)
			break;
	buf_reset(b);
	for (i++; i < end; i++) {
		p = doc->line[i];
		if (strncmp(p, "#    ", 5) == 0) { /* continuation */
			if (in)
				add_text(b, p);
			continue;
		}
		if (strncmp(p, "#   ", 4) != 0)
			break; /* the end of the block */
		if (in)
			return 0;
		p += 4;
		if (strncmp(p, name, nl) == 0 &&
		    (p[nl] == ' ' || p[nl] == '\0')) {
			in = 1;
			add_text(b, p + nl);
		}
	}
	return in ? 0 : -1;
}

/* Returns 1 when text contains "Default <d>" or "Default: <d>" whole. */
static int
has_default(const char *text, const char *d)
{
	const char *p = text, *v;
	size_t dl = strlen(d);

	while ((p = strstr(p, "Default")) != NULL) {
		v = p + 7;
		if (*v == ':')
			v++;
		v += strspn(v, " ");
		if (strncmp(v, d, dl) == 0 &&
		    (v[dl] == '\0' || strchr(" .,;)", v[dl]) != NULL))
			return 1;
		p = v;
	}
	return 0;
}

/* What every form shares: bounds, "required", a policy's name. */
static void
check_text(struct checker *ck, const char *path, const struct config_key *e,
    const char *text)
{
	char bounds[64], *q;

	if (is_integer(e)) {
		snprintf(bounds, sizeof bounds, "%lld to %lld", e->min, e->max);
		if (strstr(text, bounds) == NULL)
			problem(
			    ck, path, "bounds \"%s\" not documented", bounds);
	}
	if (e->type == CK_POLICY && e->def_s != NULL) {
		q = xasprintf("\"%s\"", e->def_s);
		if (strstr(text, q) == NULL)
			problem(ck, path, "policy name %s not documented", q);
		free(q);
	}
}

/* Checks the keys of tab, documented in lines [start, end). */
static void
check_table(struct checker *ck, const struct config_key *tab,
    const char *prefix, size_t start, size_t end, int list)
{
	const struct config_key *e;
	struct buf def, value, text;
	int has_def, commented;
	long k;
	char *path;

	buf_init(&def);
	buf_init(&value);
	buf_init(&text);
	for (e = tab; e->name != NULL; e++) {
		path = xasprintf("%s.%s", prefix, e->name);
		has_def = render_default(e, &def) == 0;
		if (list) {
			if (find_list_entry(
			        ck->doc, start, end, e->name, &text) == -1) {
				problem(ck, path, "not documented");
				goto next;
			}
			if ((e->flags & CKF_REQUIRED) &&
			    strstr(buf_cstr(&text), "required") == NULL)
				problem(ck, path, "not documented as required");
			if (has_def &&
			    !has_default(buf_cstr(&text), buf_cstr(&def)))
				problem(ck, path,
				    "default not documented as \"Default %s\"",
				    buf_cstr(&def));
		} else {
			k = find_assignment(
			    ck->doc, start, end, e->name, &commented, &value);
			if (k == -1) {
				problem(ck, path, "not documented");
				goto next;
			}
			if (has_def && commented)
				problem(ck, path,
				    "documented commented out, but has a "
				    "default (%s)",
				    buf_cstr(&def));
			else if (has_def &&
			    strcmp(buf_cstr(&value), buf_cstr(&def)) != 0)
				problem(ck, path,
				    "documented default %s, but the default "
				    "is %s",
				    buf_cstr(&value), buf_cstr(&def));
			assignment_block(ck->doc, start, (size_t)k, &text);
		}
		/*
		 * A route's policy is not descended into: its keys are those
		 * of the rate_limit section, checked there.
		 */
		check_text(ck, path, e, buf_cstr(&text));
	next:
		free(path);
	}
	buf_cleanup(&def);
	buf_cleanup(&value);
	buf_cleanup(&text);
}

/* Checks tab's keys once, should several entries share it. */
static void
check_sub(struct checker *ck, const struct config_key *tab, const char *path,
    size_t start, size_t end, int list)
{
	size_t i;

	for (i = 0; i < ck->n_seen; i++)
		if (ck->seen[i] == tab)
			return;
	if (ck->n_seen < sizeof ck->seen / sizeof ck->seen[0])
		ck->seen[ck->n_seen++] = tab;
	check_table(ck, tab, path, start, end, list);
}

/*
 * Checks that doc documents every key reachable from root, a table of
 * sections.  Returns the number of problems; each is in ck->problems.
 */
static size_t
check_doc(
    struct checker *ck, const struct doc *doc, const struct config_key *root)
{
	const struct config_key *e;
	size_t start, end;
	struct buf text;
	size_t i;

	ck->doc = doc;
	buf_init(&ck->problems);
	ck->n_problems = 0;
	ck->n_seen = 0;
	buf_init(&text);
	for (e = root; e->name != NULL; e++) {
		if (find_section(doc, e->name, &start, &end) == -1) {
			problem(
			    ck, e->name, "no section \"# %s -- ...\"", e->name);
			continue;
		}
		if ((e->flags & CKF_REQUIRED) &&
		    strstr(doc->line[start], "required") == NULL)
			problem(ck, e->name, "section not marked required");
		buf_reset(&text);
		for (i = start; i < end; i++)
			add_text(&text, doc->line[i]);
		check_text(ck, e->name, e, buf_cstr(&text));
		if (e->sub != NULL)
			check_sub(ck, e->sub, e->name, start, end,
			    e->type == CK_LIST);
	}
	buf_cleanup(&text);
	return ck->n_problems;
}

/* ---- the tests ---- */

/* Loads conf/apigw.conf, with every `from` replaced by `to` if given. */
static void
load_doc(struct doc *doc, const char *from, const char *to)
{
	char *path = doc_path(), *text = read_whole(path), *hit;
	struct buf b;

	assert_non_null(text);
	buf_init(&b);
	if (from != NULL) {
		hit = strstr(text, from);
		assert_non_null(hit);
		buf_append(&b, text, (size_t)(hit - text));
		buf_puts(&b, to);
		buf_puts(&b, hit + strlen(from));
	} else
		buf_puts(&b, text);
	doc_split(buf_cstr(&b), doc);
	buf_cleanup(&b);
	free(text);
	free(path);
}

static void
test_every_key_documented(void **state)
{
	struct checker ck;
	struct doc doc;
	size_t n;

	(void)state;
	load_doc(&doc, NULL, NULL);
	n = check_doc(&ck, &doc, config_keys_root);
	if (n > 0)
		fprintf(stderr, "%s", buf_cstr(&ck.problems));
	assert_int_equal(n, 0);
	/* Every table was reached (policy keys once, for two entries). */
	assert_int_equal(ck.n_seen, 11);
	buf_cleanup(&ck.problems);
	doc_free(&doc);
}

/* Asserts that the checker, on doc, reports a problem containing want. */
static void
assert_problem(
    const struct doc *doc, const struct config_key *root, const char *want)
{
	struct checker ck;

	assert_true(check_doc(&ck, doc, root) > 0);
	if (strstr(buf_cstr(&ck.problems), want) == NULL) {
		fprintf(stderr, "want \"%s\" in:\n%s", want,
		    buf_cstr(&ck.problems));
		fail();
	}
	buf_cleanup(&ck.problems);
}

static void
test_wrong_default_noticed(void **state)
{
	struct doc doc;

	(void)state;
	load_doc(
	    &doc, "  connect_timeout_ms = 200;", "  connect_timeout_ms = 300;");
	assert_problem(&doc, config_keys_root,
	    "redis.connect_timeout_ms: documented default 300, but the "
	    "default is 200");
	doc_free(&doc);

	load_doc(&doc, "  failure_statuses = [ 502, 503, 504 ];",
	    "  failure_statuses = [ 502, 503 ];");
	assert_problem(&doc, config_keys_root,
	    "circuit_breaker.failure_statuses: documented default");
	doc_free(&doc);

	load_doc(&doc, "  format = \"combined\";", "  #format = \"combined\";");
	assert_problem(
	    &doc, config_keys_root, "log.format: documented commented out");
	doc_free(&doc);

	load_doc(
	    &doc, "1 to 600000.  Default 2000.", "1 to 600000.  Default 3000.");
	assert_problem(&doc, config_keys_root,
	    "routes.connect_timeout_ms: default not documented as "
	    "\"Default 2000\"");
	doc_free(&doc);

	load_doc(&doc, "0 to 536870912.", "0 to 53687091.");
	assert_problem(&doc, config_keys_root,
	    "cache.max_object_bytes: bounds \"0 to 536870912\"");
	doc_free(&doc);
}

static void
test_undocumented_key_noticed(void **state)
{
	/* The cache table with a key the file does not mention. */
	static const struct config_key cache_plus[] = {
	    {.name = "max_object_bytes",
	        .type = CK_LONG,
	        .min = 0,
	        .max = 536870912,
	        .def = 1048576},
	    {.name = "max_objects",
	        .type = CK_LONG,
	        .min = 0,
	        .max = 1000,
	        .def = 10},
	    {.name = NULL},
	};
	static const struct config_key route_plus[] = {
	    {.name = "prefix", .type = CK_STRING, .flags = CKF_REQUIRED},
	    {.name = "weight", .type = CK_INT, .min = 1, .max = 100, .def = 1},
	    {.name = NULL},
	};
	static const struct config_key root_plus[] = {
	    {.name = "cache", .type = CK_GROUP, .sub = cache_plus},
	    {.name = "routes", .type = CK_LIST, .sub = route_plus},
	    {.name = "metrics", .type = CK_GROUP, .sub = cache_plus},
	    {.name = NULL},
	};
	struct doc doc;

	(void)state;
	load_doc(&doc, NULL, NULL);
	assert_problem(&doc, root_plus, "cache.max_objects: not documented");
	assert_problem(&doc, root_plus, "routes.weight: not documented");
	assert_problem(&doc, root_plus, "metrics: no section");
	doc_free(&doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_documented),
	    cmocka_unit_test(test_wrong_default_noticed),
	    cmocka_unit_test(test_undocumented_key_noticed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
