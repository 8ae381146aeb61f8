class MatcherBaseClass {
  constructor(options) {
    this.options = options;
  }
}

export { MatcherBaseClass };
//# sourceMappingURL=types.mjs.map
